// Decodes the Confluent-framed Avro records of a fixture file (tests/testdata/avro/*.json, written
// by tests/realstack_avro_smoke.py --save_fixtures) with Apache Avro's own Java library, the
// reference implementation, and prints each record's key and value in Avro's JSON encoding: an
// independent decoding of the fixtures' bytes for the C++ decoder's tests to compare against.
// A single-file program on the converter's class path (avro 1.11.1) plus the real-stack jars
// (Jackson):
//
//   java -cp "$(scripts/registry_deps.sh --converter)/*:$(scripts/realstack_deps.sh)/*" \
//     tools/registry/avrodump/AvroDump.java tests/testdata/avro/debezium_mariadb_records.json
//
// Schemas with references (Apicurio's default, --avro_references=true) are parsed with their
// referenced schemas (the fixture's "referenced_schemas") known first.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.util.HexFormat;
import java.util.Iterator;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;

public class AvroDump {
  static ObjectMapper mapper = new ObjectMapper();

  static Schema schema(JsonNode doc, int id) {
    Schema.Parser parser = new Schema.Parser();
    JsonNode refs = doc.path("referenced_schemas");
    for (Iterator<JsonNode> it = refs.elements(); it.hasNext(); ) parser.parse(it.next().asText());
    return parser.parse(doc.get("schemas_by_id").get(Integer.toString(id)).get("schema").asText());
  }

  static JsonNode decode(Schema schema, String hex) throws Exception {
    byte[] record = HexFormat.of().parseHex(hex);
    if (record.length < 5 || record[0] != 0) throw new IllegalArgumentException("no magic byte 0");
    var decoder = DecoderFactory.get().binaryDecoder(record, 5, record.length - 5, null);
    Object datum = new GenericDatumReader<Object>(schema).read(null, decoder);
    if (!decoder.isEnd()) throw new IllegalStateException("bytes left after the record");
    var out = new ByteArrayOutputStream();
    JsonEncoder json = EncoderFactory.get().jsonEncoder(schema, out);
    new GenericDatumWriter<Object>(schema).write(datum, json);
    json.flush();
    return mapper.readTree(out.toString("UTF-8"));
  }

  public static void main(String[] args) throws Exception {
    JsonNode doc = mapper.readTree(new File(args[0]));
    ObjectNode result = mapper.createObjectNode();
    result.put("about", "Each record of " + new File(args[0]).getName() + " decoded by Apache Avro "
        + org.apache.avro.Schema.class.getPackage().getImplementationVersion()
        + " (Java, GenericDatumReader) with its writer schema, in Avro's JSON encoding (unions as"
        + " {\"type\": value}, bytes as ISO-8859-1 text). Made by tools/registry/avrodump/AvroDump.java.");
    ObjectNode records = result.putObject("records");
    for (JsonNode r : doc.get("records")) {
      ObjectNode one = records.putObject(r.get("name").asText());
      one.set("key", decode(schema(doc, r.get("key_schema_id").asInt()), r.get("key_hex").asText()));
      one.set("value", r.get("value_hex").isNull() ? null
          : decode(schema(doc, r.get("value_schema_id").asInt()), r.get("value_hex").asText()));
    }
    System.out.println(mapper.writerWithDefaultPrettyPrinter().writeValueAsString(result));
  }
}
