package dev.cdcjoin.peers;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The limit: MariaDB's own rate for the benchmark's final rows, written as multi-row
 * INSERT ... ON DUPLICATE KEY UPDATE of BATCH rows per statement (autocommit: one statement, one
 * transaction) from one client, with no Kafka. The rows of the expected table (Produce's TSV), in
 * a fixed shuffled order (the keys reach a merger in no particular order), into a fresh table:
 * pass 1 inserts every row, pass 2 updates every row (new values), as a merge mostly does.
 *
 * <p>Usage: DbLimit JDBC_URL TABLE EXPECTED_TSV BATCH
 */
public final class DbLimit {
  public static void main(String[] args) throws Exception {
    String url = args[0], table = args[1];
    List<String[]> rows = new ArrayList<>();
    for (String line : Files.readAllLines(Paths.get(args[2]), StandardCharsets.UTF_8)) {
      rows.add(line.split("\t", -1));
    }
    int batch = Integer.parseInt(args[3]);
    Collections.shuffle(rows, new Random(16));
    try (Connection c = DriverManager.getConnection(url)) {
      // A warm-up of both passes into a scratch table first (the JIT, the server's buffers), then
      // the timed run into a fresh table.
      run(c, table + "Warm", rows, batch);
      long h0 = handlerRows(c);
      double[] seconds = run(c, table, rows, batch);
      long handler = handlerRows(c) - h0;
      int n = rows.size();
      // handler_rows: Handler_write + Handler_update + Handler_delete, the basis the script uses
      // for every side's rows/s (an upsert that updates counts a write attempt and an update).
      System.out.printf("{\"rows\":%d,\"batch\":%d,\"insert_rows_per_s\":%.0f,\"update_rows_per_s\":%.0f,"
              + "\"rows_per_s\":%.0f,\"insert_s\":%.3f,\"update_s\":%.3f,\"handler_rows\":%d,"
              + "\"handler_rows_per_s\":%.0f}%n",
          n, batch, n / seconds[0], n / seconds[1], 2 * n / (seconds[0] + seconds[1]), seconds[0], seconds[1],
          handler, handler / (seconds[0] + seconds[1]));
    }
  }

  static long handlerRows(Connection c) throws Exception {
    long sum = 0;
    try (Statement s = c.createStatement();
        java.sql.ResultSet r = s.executeQuery("SHOW GLOBAL STATUS WHERE Variable_name IN"
            + " ('Handler_write', 'Handler_update', 'Handler_delete')")) {
      while (r.next()) sum += r.getLong(2);
    }
    return sum;
  }

  static double[] run(Connection c, String table, List<String[]> rows, int batch) throws Exception {
    {
      try (Statement s = c.createStatement()) {
        s.execute("DROP TABLE IF EXISTS " + table);
        s.execute("CREATE TABLE " + table + " (userId BIGINT NOT NULL PRIMARY KEY, maskingName VARCHAR(128) NULL,"
            + " dateCreated DATETIME(3) NULL, currentNickname VARCHAR(128) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
      }
      double[] seconds = new double[2];
      for (int pass = 0; pass < 2; pass++) {
        long t0 = System.nanoTime();
        PreparedStatement full = null;
        for (int start = 0; start < rows.size(); start += batch) {
          int n = Math.min(batch, rows.size() - start);
          PreparedStatement ps;
          if (n == batch && full != null) {
            ps = full;
          } else {
            StringBuilder sql = new StringBuilder("INSERT INTO " + table
                + " (userId, maskingName, dateCreated, currentNickname) VALUES ");
            for (int i = 0; i < n; i++) sql.append(i == 0 ? "(?,?,?,?)" : ",(?,?,?,?)");
            sql.append(" ON DUPLICATE KEY UPDATE maskingName = VALUES(maskingName),"
                + " dateCreated = VALUES(dateCreated), currentNickname = VALUES(currentNickname)");
            ps = c.prepareStatement(sql.toString());
            if (n == batch) full = ps;
          }
          int p = 1;
          for (int i = 0; i < n; i++) {
            String[] r = rows.get(start + i);
            ps.setLong(p++, Long.parseLong(r[0]));
            ps.setString(p++, r[1].equals("\\N") ? null : (pass == 0 ? r[1] : r[1] + "+"));
            ps.setTimestamp(p++, r[2].equals("\\N") ? null : Timestamp.valueOf(r[2]));
            ps.setString(p++, r[3].equals("\\N") ? null : (pass == 0 ? r[3] : r[3] + "+"));
          }
          ps.executeUpdate();
          if (ps != full) ps.close();
        }
        if (full != null) full.close();
        seconds[pass] = (System.nanoTime() - t0) / 1e9;
      }
      if (table.endsWith("Warm")) {
        try (Statement s = c.createStatement()) {
          s.execute("DROP TABLE " + table);
        }
      }
      return seconds;
    }
  }
}
