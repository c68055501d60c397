package dev.cdcjoin.peers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;

/**
 * The Kafka Streams peer: the seed's OUTER merge of User and UserExtData into Nickname rows,
 * written to an output topic, as a Kafka Streams user would write it.
 *
 * <p>Each Debezium topic is keyed by its own primary key ({"id":k} and {"userId":k}), so both are
 * re-keyed by the user id (selectKey: Kafka Streams repartitions them through internal topics)
 * and mapped to that side's target columns. Then either
 * <ul>
 *   <li>stream: KStream-KStream outerJoin with JoinWindows.ofTimeDifferenceAndGrace(window,
 *       grace), event time = the record timestamp (the producer sets it to source.ts_ms), or
 *   <li>table: toTable() of each side (a Debezium delete is a null value: the row goes) and
 *       KTable-KTable outerJoin.
 * </ul>
 *
 * <p>Usage: JoinApp BOOTSTRAP APP_ID stream|table STATE_DIR WINDOW_MS GRACE_MS OUTPUT_TOPIC
 */
public final class JoinApp {
  static final ObjectMapper MAPPER = new ObjectMapper();

  /** The side's target columns as a small JSON object, or null for a delete (or a tombstone). */
  static String sideColumns(String value, boolean user) {
    if (value == null) return null;
    try {
      JsonNode payload = MAPPER.readTree(value).path("payload");
      if (payload.path("op").asText().equals("d")) return null;
      JsonNode after = payload.path("after");
      ObjectNode out = MAPPER.createObjectNode();
      if (user) {
        out.set("maskingName", after.path("simpleName"));
        out.set("dateCreated", after.path("dateCreated"));
      } else {
        out.set("currentNickname", after.path("originalName"));
      }
      return out.toString();
    } catch (Exception e) {
      return null;
    }
  }

  static String userId(String key, boolean user) {
    try {
      return MAPPER.readTree(key).path("payload").path(user ? "id" : "userId").asText();
    } catch (Exception e) {
      return null;
    }
  }

  /** A merged Nickname row: both sides' columns, NULL where a side is missing. */
  static String merge(String key, String user, String ext) {
    try {
      ObjectNode row = MAPPER.createObjectNode();
      row.put("userId", Long.parseLong(key));
      JsonNode u = user == null ? null : MAPPER.readTree(user);
      JsonNode x = ext == null ? null : MAPPER.readTree(ext);
      row.set("maskingName", u == null ? null : u.get("maskingName"));
      row.set("dateCreated", u == null ? null : u.get("dateCreated"));
      row.set("currentNickname", x == null ? null : x.get("currentNickname"));
      return row.toString();
    } catch (Exception e) {
      return null;
    }
  }

  static KStream<String, String> side(StreamsBuilder builder, String topic, boolean user) {
    return builder.stream(topic, Consumed.with(Serdes.String(), Serdes.String()))
        .filter((k, v) -> v != null)
        .map((k, v) -> KeyValue.pair(userId(k, user), sideColumns(v, user)));
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], appId = args[1], mode = args[2], stateDir = args[3];
    long windowMs = Long.parseLong(args[4]), graceMs = Long.parseLong(args[5]);
    String output = args[6];

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    // cdcjoind commits every 500 ms in this benchmark; Kafka Streams' default is 30 s.
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    // cdcjoind's session timeout in this benchmark (the default 45 s decides the restart time).
    p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 10000);

    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, String> users = side(builder, Produce.USER_TOPIC, true);
    KStream<String, String> exts = side(builder, Produce.EXT_TOPIC, false);
    if (mode.equals("stream")) {
      ValueJoiner<String, String, String> joiner = (u, x) -> merge(null, u, x);
      users.filter((k, v) -> v != null)
          .outerJoin(exts.filter((k, v) -> v != null),
              (k, u, x) -> merge(k, u, x),
              JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(windowMs), Duration.ofMillis(graceMs)),
              StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String()))
          .to(output, Produced.with(Serdes.String(), Serdes.String()));
    } else {
      KTable<String, String> userTable = users.toTable(Materialized.as("user-rows"));
      KTable<String, String> extTable = exts.toTable(Materialized.as("ext-rows"));
      userTable.outerJoin(extTable, (u, x) -> merge("0", u, x))
          .toStream()
          .to(output, Produced.with(Serdes.String(), Serdes.String()));
    }

    KafkaStreams streams = new KafkaStreams(builder.build(), p);
    CountDownLatch stop = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(20));
      stop.countDown();
    }));
    streams.setStateListener((now, before) -> System.err.println("JoinApp: state " + before + " -> " + now));
    streams.start();
    stop.await();
  }
}
