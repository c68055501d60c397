package dev.cdcjoin.peers;

import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Judges one side's progress from outside, the same way for every side: the consumer group's
 * committed offsets against the topics' end offsets (a committed offset means applied, for every
 * side measured: cdcjoind commits below what the sink has made durable, Connect commits after
 * the JDBC sink's put() returned, Kafka Streams after its state and output are flushed).
 *
 * <p>Usage: Watch BOOTSTRAP GROUP TOPIC[,TOPIC] PID_FILE TIMEOUT_S BASELINE READY_FILE
 *
 * <p>PID_FILE holds the comma-separated PIDs to sample (written by the caller once they run; read
 * at every sample). BASELINE is the input offsets the group had committed before the measured
 * process started (0 for a new group); -1 takes the first sample's. READY_FILE is created once
 * the first sample is taken, so the caller starts the measured process only then.
 *
 * <p>Every 200 ms: the sum of committed offsets on the input topics (and, for Kafka Streams, on
 * the group's repartition topics). "first" is the first sample where the group has committed
 * anything; "done" the first where every input and repartition partition is committed to its end.
 * At both it reads utime+stime of each PID from /proc/PID/stat, and at done VmHWM. Prints one
 * JSON line.
 */
public final class Watch {
  static double cpuSeconds(String pid) {
    try {
      String stat = Files.readString(Paths.get("/proc/" + pid + "/stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      // Fields after the command: state is [0]; utime is field 14 of the line, [11] here.
      long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
      return ticks / 100.0;
    } catch (Exception e) {
      return -1;
    }
  }

  static double hwmMb(String pid) {
    try {
      for (String line : Files.readAllLines(Paths.get("/proc/" + pid + "/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        }
      }
    } catch (Exception e) {
      // gone
    }
    return -1;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], group = args[1];
    List<String> inputs = List.of(args[2].split(","));
    String pidFile = args[3];
    long timeoutMs = Long.parseLong(args[4]) * 1000;
    long baselineArg = Long.parseLong(args[5]);
    String readyFile = args[6];
    String[] pids = new String[0];
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    long began = System.currentTimeMillis();
    long tFirst = -1, committedFirst = 0, baseline = baselineArg;
    double[] cpuFirst = new double[0];
    boolean ready = false;
    try (Admin admin = Admin.create(p)) {
      while (true) {
        long now = System.currentTimeMillis();
        boolean timedOut = now - began > timeoutMs;
        if (timedOut && tFirst < 0) {
          System.out.println("{\"error\":\"timeout\",\"group\":\"" + group + "\"}");
          System.exit(1);
        }
        List<String> topics = new ArrayList<>(inputs);
        for (String t : admin.listTopics().names().get()) {
          if (t.startsWith(group + "-") && t.endsWith("-repartition")) topics.add(t);
        }
        Map<String, TopicDescription> desc = admin.describeTopics(topics).allTopicNames().get();
        Map<TopicPartition, OffsetSpec> want = new HashMap<>();
        for (TopicDescription d : desc.values()) {
          d.partitions().forEach(pi -> want.put(new TopicPartition(d.name(), pi.partition()), OffsetSpec.latest()));
        }
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = admin.listOffsets(want).all().get();
        Map<TopicPartition, OffsetAndMetadata> committed =
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        long inputEnd = 0, inputCommitted = 0;
        boolean done = true;
        for (var e : ends.entrySet()) {
          long end = e.getValue().offset();
          OffsetAndMetadata c = committed.get(e.getKey());
          long off = c == null ? 0 : c.offset();
          if (off < end) done = false;
          if (inputs.contains(e.getKey().topic())) {
            inputEnd += end;
            inputCommitted += off;
          }
        }
        if (baseline < 0) baseline = inputCommitted;
        if (!ready) {
          Files.writeString(Paths.get(readyFile), "ready\n");
          ready = true;
        }
        if (tFirst < 0) {
          try {
            String text = Files.readString(Paths.get(pidFile)).trim();
            pids = text.isEmpty() ? new String[0] : text.split(",");
          } catch (Exception e) {
            pids = new String[0];
          }
        }
        if (pids.length > 0 && !Files.exists(Paths.get("/proc/" + pids[0]))) {
          System.out.println("{\"error\":\"the measured process " + pids[0] + " exited\",\"group\":\"" + group + "\"}");
          System.exit(1);
        }
        if (tFirst < 0 && inputCommitted > baseline) {
          tFirst = now;
          cpuFirst = new double[pids.length];
          committedFirst = inputCommitted;
          for (int i = 0; i < pids.length; i++) cpuFirst[i] = cpuSeconds(pids[i]);
        }
        if ((done || timedOut) && tFirst >= 0) {
          // On a timeout: the rate over what was committed so far, marked as such.
          StringBuilder b = new StringBuilder();
          long records = (done ? inputEnd : inputCommitted) - committedFirst;
          double wall = (now - tFirst) / 1000.0;
          b.append(String.format("{\"timeout\":%s,\"group\":\"%s\",\"records_end\":%d,\"committed_at_first\":%d,"
                  + "\"baseline\":%d,\"records\":%d,\"wall_s\":%.3f,\"records_per_s\":%.1f,"
                  + "\"watch_s\":%.3f,\"t_first_ms\":%d,\"t_done_ms\":%d",
              timedOut && !done, group, inputEnd, committedFirst, baseline, records, wall,
              wall > 0 ? records / wall : 0.0, (now - began) / 1000.0, tFirst, now));
          for (int i = 0; i < pids.length; i++) {
            double cpu = cpuSeconds(pids[i]);
            b.append(String.format(",\"cpu_s_%s\":%.2f,\"cpu_total_s_%s\":%.2f,\"hwm_mb_%s\":%.1f",
                pids[i], cpu - cpuFirst[i], pids[i], cpu, pids[i], hwmMb(pids[i])));
          }
          b.append('}');
          System.out.println(b);
          return;
        }
        Thread.sleep(200);
      }
    }
  }
}
