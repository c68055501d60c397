package dev.cdcjoin.peers;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The peer benchmark's workload: the seed's two tables, User(id, simpleName, dateCreated) and
 * UserExtData(userId, originalName), as Debezium JSON envelopes with Kafka Connect's schema
 * wrapper (what Debezium's JSON converter writes by default, and what the JDBC sink needs), and
 * the final table the merge must reach, computed here from the workload's own definition.
 *
 * <p>Event e (0-based) belongs to the seed's salted key sequence: a counter c = e - (e+1)/5
 * repeats its previous value every fifth event (keys 1,2,3,4,4,5,6,7,8,8,...: every fifth event
 * repeats the previous key), key = c % keys + 1. Sources alternate event by event, so a repeat is
 * the other table's change of the same key, adjacent in time. A side's first change of a key is a
 * snapshot read (op r) during the first pass over the keys and a create (c) later; after that it
 * is an update (u), or, after the first pass, a delete (d, followed by a tombstone as Debezium
 * writes) with probability delete_share. Names are NULL with probability null_share. Event time
 * (source.ts_ms, and the Kafka record timestamp) advances 1 ms every 10 events and ends at the
 * time of production.
 *
 * <p>Expected final table (target Nickname(userId, maskingName, dateCreated, currentNickname),
 * each side's delete clearing that side's columns): per key, the latest row of each side, or
 * NULLs where that side's row is deleted or absent; a row whose non-key columns are all NULL is
 * no row. Written as TSV (\N for NULL) for LOAD DATA.
 *
 * <p>Usage: Produce BOOTSTRAP EVENTS PARTITIONS EXPECTED_TSV [extra FIRST_KEY] — "extra" appends
 * EVENTS events of new keys from FIRST_KEY on (the restart checks), with no expected table.
 */
public final class Produce {
  static final String USER_TOPIC = "cdc.azar.User";
  static final String EXT_TOPIC = "cdc.azar.UserExtData";

  static final String USER_KEY_SCHEMA =
      "{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":false,\"field\":\"id\"}],"
          + "\"optional\":false,\"name\":\"cdc.azar.User.Key\"}";
  static final String EXT_KEY_SCHEMA =
      "{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":false,\"field\":\"userId\"}],"
          + "\"optional\":false,\"name\":\"cdc.azar.UserExtData.Key\"}";
  static final String USER_ROW =
      "[{\"type\":\"int64\",\"optional\":false,\"field\":\"id\"},"
          + "{\"type\":\"string\",\"optional\":true,\"field\":\"simpleName\"},"
          + "{\"type\":\"int64\",\"optional\":true,\"name\":\"io.debezium.time.Timestamp\",\"version\":1,\"field\":\"dateCreated\"}]";
  static final String EXT_ROW =
      "[{\"type\":\"int64\",\"optional\":false,\"field\":\"userId\"},"
          + "{\"type\":\"string\",\"optional\":true,\"field\":\"originalName\"}]";
  static final String SOURCE_SCHEMA =
      "{\"type\":\"struct\",\"fields\":["
          + "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"
          + "{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
          + "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"
          + "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
          + "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,"
          + "\"parameters\":{\"allowed\":\"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental\"},"
          + "\"default\":\"false\",\"field\":\"snapshot\"},"
          + "{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
          + "{\"type\":\"string\",\"optional\":true,\"field\":\"table\"},"
          + "{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},"
          + "{\"type\":\"string\",\"optional\":false,\"field\":\"file\"},"
          + "{\"type\":\"int64\",\"optional\":false,\"field\":\"pos\"},"
          + "{\"type\":\"int32\",\"optional\":true,\"field\":\"row\"}],"
          + "\"optional\":false,\"name\":\"io.debezium.connector.mariadb.Source\",\"field\":\"source\"}";

  static String valueSchema(String table, String row) {
    return "{\"type\":\"struct\",\"fields\":["
        + "{\"type\":\"struct\",\"fields\":" + row + ",\"optional\":true,\"name\":\"cdc.azar." + table + ".Value\",\"field\":\"before\"},"
        + "{\"type\":\"struct\",\"fields\":" + row + ",\"optional\":true,\"name\":\"cdc.azar." + table + ".Value\",\"field\":\"after\"},"
        + SOURCE_SCHEMA + ","
        + "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"
        + "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"}],"
        + "\"optional\":false,\"name\":\"cdc.azar." + table + ".Envelope\",\"version\":2}";
  }

  static final String USER_VALUE_SCHEMA = valueSchema("User", USER_ROW);
  static final String EXT_VALUE_SCHEMA = valueSchema("UserExtData", EXT_ROW);

  static void jsonString(StringBuilder b, String s) {
    if (s == null) {
      b.append("null");
      return;
    }
    b.append('"');
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch == '"' || ch == '\\') b.append('\\');
      b.append(ch);
    }
    b.append('"');
  }

  // A side's row image: [name, dateCreated-or-null] (dateCreated only for User).
  static final class Row {
    final String name;
    final long date;
    Row(String name, long date) {
      this.name = name;
      this.date = date;
    }
  }

  static void rowJson(StringBuilder b, boolean user, long key, Row r) {
    if (r == null) {
      b.append("null");
      return;
    }
    if (user) {
      b.append("{\"id\":").append(key).append(",\"simpleName\":");
      jsonString(b, r.name);
      b.append(",\"dateCreated\":").append(r.date).append('}');
    } else {
      b.append("{\"userId\":").append(key).append(",\"originalName\":");
      jsonString(b, r.name);
      b.append('}');
    }
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    long events = Long.parseLong(args[1]);
    int partitions = Integer.parseInt(args[2]);
    String expectedPath = args[3];
    boolean extra = args.length > 4 && args[4].equals("extra");
    long firstKey = extra ? Long.parseLong(args[5]) : 1;
    long keys = extra ? Math.max(1, events / 2) : Math.max(1, events / 10);
    double deleteShare = 0.02, nullShare = 0.05;

    if (!extra) {
      Properties ap = new Properties();
      ap.put("bootstrap.servers", bootstrap);
      try (Admin admin = Admin.create(ap)) {
        // Retention off: the records must outlive the whole run, whatever their timestamps.
        Map<String, String> cfg = Map.of("retention.ms", "-1", "retention.bytes", "-1");
        admin.createTopics(List.of(new NewTopic(USER_TOPIC, partitions, (short) 1).configs(cfg),
            new NewTopic(EXT_TOPIC, partitions, (short) 1).configs(cfg))).all().get();
      }
    }
    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.ACKS_CONFIG, "all");
    pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    pp.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
    pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
    pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");

    long now = System.currentTimeMillis();
    long startTs = now - events / 10 - 1;
    long dateBase = 1624233600000L; // 2021-06-21, the seed's date.
    SplittableRandom rnd = new SplittableRandom(16);
    Row[][] rows = new Row[2][(int) keys + 1];
    long[] counts = new long[6]; // r c u d tombstones records
    long keyHits = 0;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      StringBuilder b = new StringBuilder(1024);
      for (long e = 0; e < events; e++) {
        long c = e - (e + 1) / 5;
        int k = (int) (c % keys) + 1;
        long key = firstKey + k - 1;
        boolean firstPass = c < keys;
        int side = (int) (e % 2);
        boolean user = side == 0;
        long ts = startTs + e / 10;
        Row before = rows[side][k];
        Row after;
        char op;
        double draw = rnd.nextDouble();
        String name = rnd.nextDouble() < nullShare ? null
            : (user ? "u" : "nick-") + key + "-" + e;
        if (before == null) {
          op = firstPass && !extra ? 'r' : 'c';
          after = new Row(name, dateBase + e * 1000);
        } else if (!firstPass && draw < deleteShare) {
          op = 'd';
          after = null;
        } else {
          op = 'u';
          after = new Row(name, dateBase + e * 1000);
        }
        rows[side][k] = after;
        String table = user ? "User" : "UserExtData";
        String topic = user ? USER_TOPIC : EXT_TOPIC;
        String keyJson = "{\"schema\":" + (user ? USER_KEY_SCHEMA : EXT_KEY_SCHEMA)
            + ",\"payload\":{\"" + (user ? "id" : "userId") + "\":" + key + "}}";
        b.setLength(0);
        b.append("{\"schema\":").append(user ? USER_VALUE_SCHEMA : EXT_VALUE_SCHEMA)
            .append(",\"payload\":{\"before\":");
        rowJson(b, user, key, op == 'r' || op == 'c' ? null : before);
        b.append(",\"after\":");
        rowJson(b, user, key, after);
        b.append(",\"source\":{\"version\":\"3.5.0.Final\",\"connector\":\"mariadb\",\"name\":\"cdc\",\"ts_ms\":")
            .append(ts).append(",\"snapshot\":\"").append(op == 'r' ? "true" : "false")
            .append("\",\"db\":\"azar\",\"table\":\"").append(table)
            .append("\",\"server_id\":1,\"file\":\"binlog.000001\",\"pos\":").append(4 + e * 300)
            .append(",\"row\":0},\"op\":\"").append(op).append("\",\"ts_ms\":").append(ts).append("}}");
        producer.send(new ProducerRecord<String, String>(topic, (Integer) null, (Long) ts, keyJson, b.toString()));
        counts["rcud".indexOf(op)]++;
        counts[5]++;
        if (op == 'd') {
          producer.send(new ProducerRecord<String, String>(topic, (Integer) null, (Long) ts, keyJson, (String) null));
          counts[4]++;
          counts[5]++;
        }
      }
      producer.flush();
    }

    long expectedRows = 0;
    if (!extra) {
      DateTimeFormatter fmt =
          DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS").withZone(ZoneOffset.UTC);
      try (BufferedWriter w = Files.newBufferedWriter(Paths.get(expectedPath), StandardCharsets.UTF_8)) {
        for (int k = 1; k <= keys; k++) {
          Row u = rows[0][k], x = rows[1][k];
          String masking = u == null ? null : u.name;
          String date = u == null ? null : fmt.format(Instant.ofEpochMilli(u.date));
          String nick = x == null ? null : x.name;
          if (masking == null && date == null && nick == null) continue;
          expectedRows++;
          w.write(k + "\t" + (masking == null ? "\\N" : masking) + "\t" + (date == null ? "\\N" : date)
              + "\t" + (nick == null ? "\\N" : nick) + "\n");
        }
      }
    }
    System.out.printf("{\"change_events\":%d,\"records\":%d,\"keys\":%d,\"r\":%d,\"c\":%d,\"u\":%d,\"d\":%d,"
            + "\"tombstones\":%d,\"expected_rows\":%d,\"first_ts_ms\":%d}%n",
        events, counts[5], keys, counts[0], counts[1], counts[2], counts[3], counts[4], expectedRows, startTs);
  }
}
