package tally.peer;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * tally's rule-based stages as a Kafka Streams application: the peer of bench/run.py peer.
 *
 * <p>Reads tally's input topic (Confluent-framed BehaviorEvent) and writes what `tally run
 * -X model.enabled=false -X markov.enabled=false` writes to its interest and attribution
 * topics: one InterestDelta per event and dimension, one Attribution (the five rule-based
 * methods) per purchase with touchpoints, with tally's schemas, framing, keys and
 * explanations. The numbers follow docs/interests.md and docs/attribution.md, as
 * tests/integration/reference.py and tally's C code do (features/interest.c,
 * model/attribution.c); so do the entries' order and the bound features.max.interests.
 *
 * <p>Processor API, one stream thread, one persistent RocksDB store per task ("users":
 * user_id to the user's interest entries and open journey), cached and logged to its
 * changelog as Streams does by default. No punctuator: with the model off tally arms no
 * timer either; touchpoints leave a journey only by the lookback, at a touch and at a
 * purchase, so late events give the same records as in tally.
 *
 * <p>It stops by itself: once every input partition's records up to its end offset at start
 * are processed, the application is closed (a clean close commits), and its committed
 * offsets are checked against those ends. One line on stdout says what it did:
 * {@code streams-peer: events=N interest_deltas=N attributions=N seconds=S tenths=S,...}
 * (seconds: from the first record to the last; tenths: the time of each tenth of the events).
 */
public final class StreamsPeer {

    static final String[] TYPES = {"IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART", "PURCHASE"};
    static final String[] PHRASES = {"impression", "browse", "click", "favorite", "add-to-cart", "purchase"};
    static final String[] DIMS = {"category", "item", "channel"};
    static final String[] METHODS = {"last_touch", "first_touch", "linear", "time_decay", "position_based"};
    static final int PURCHASE = 5;

    /** tally's configuration keys of the rule-based stages, at tally's defaults. */
    static final class Params {
        double halfLifeMs = 86_400_000, alpha = 0.5, beta = 0.5, epsilon = 1e-6;
        double[] heat = {0.1, 1, 2, 3, 4, 5};
        boolean[] dims = {true, false, false};
        int maxInterests = 1000;
        long lookbackMs = 604_800_000L;
        int maxTouchpoints = 50;
        boolean resetOnConversion = true;
        double timeDecayHalfLifeMs = 604_800_000.0;
        int touchMask = 0x1f;   // every type but PURCHASE

        void set(String key, String v) {
            switch (key) {
                case "features.half.life.ms" -> halfLifeMs = Double.parseDouble(v);
                case "features.alpha" -> alpha = Double.parseDouble(v);
                case "features.beta" -> beta = Double.parseDouble(v);
                case "features.epsilon" -> epsilon = Double.parseDouble(v);
                case "features.max.interests" -> maxInterests = Integer.parseInt(v);
                case "features.dims" -> {
                    dims = new boolean[] {true, false, false};   // category is always on
                    for (String d : v.split("[, ]+")) if (!d.isEmpty()) dims[index(DIMS, d, key)] = true;
                }
                case "attribution.lookback.ms" -> lookbackMs = Long.parseLong(v);
                case "attribution.max.touchpoints" -> maxTouchpoints = Integer.parseInt(v);
                case "attribution.reset.on.conversion" -> resetOnConversion = Boolean.parseBoolean(v);
                case "attribution.time.decay.half.life.ms" -> timeDecayHalfLifeMs = Double.parseDouble(v);
                case "attribution.touch.types" -> {
                    touchMask = 0;
                    for (String t : v.split("[, ]+")) if (!t.isEmpty()) touchMask |= 1 << index(TYPES, t, key);
                }
                case "model.enabled", "markov.enabled" -> {
                    if (!v.equals("false")) throw new IllegalArgumentException(key + ": the peer has rule-based stages only");
                }
                default -> {
                    if (!key.startsWith("features.heat.")) throw new IllegalArgumentException("unknown key " + key);
                    heat[index(TYPES, key.substring("features.heat.".length()), key)] = Double.parseDouble(v);
                }
            }
        }

        static int index(String[] names, String name, String key) {
            for (int i = 0; i < names.length; i++) if (names[i].equalsIgnoreCase(name)) return i;
            throw new IllegalArgumentException(key + ": unknown " + name);
        }
    }

    // ------------------------------------------------------------------ the user's state

    static final class Interest {
        int dim;
        String id;
        double f, h;
        long t;
    }

    static final class Touchpoint {
        String eventId, itemId, categoryId, channel;   // the last two may be null
        int type;
        long ts;
    }

    /** One user's record in the store: interest entries (unordered, as in tally) and the
     * open journey in (ts, arrival) order. */
    static final class User {
        final ArrayList<Interest> ent = new ArrayList<>();
        final ArrayList<Touchpoint> journey = new ArrayList<>();

        /** Removes entry i, moving the last one into its place (as tally does). */
        void removeInterest(int i) {
            Interest last = ent.remove(ent.size() - 1);
            if (i < ent.size()) ent.set(i, last);
        }
    }

    /** A user's record as bytes: the entries, then the touchpoints; strings as a length and
     * their UTF-8 bytes (length -1: null). */
    static final class UserSerde implements Serializer<User>, Deserializer<User> {
        @Override
        public void configure(Map<String, ?> configs, boolean isKey) {
        }

        @Override
        public void close() {
        }

        @Override
        public byte[] serialize(String topic, User u) {
            int bound = 8;   // every string at most 3 bytes a char, and its 4-byte length
            for (Interest e : u.ent) bound += 29 + 3 * e.id.length();
            for (Touchpoint t : u.journey)
                bound += 25 + 3 * (t.eventId.length() + t.itemId.length() + len(t.categoryId) + len(t.channel));
            ByteBuffer b = ByteBuffer.allocate(bound);
            b.putInt(u.ent.size());
            for (Interest e : u.ent) {
                b.put((byte) e.dim);
                putString(b, e.id);
                b.putDouble(e.f).putDouble(e.h).putLong(e.t);
            }
            b.putInt(u.journey.size());
            for (Touchpoint t : u.journey) {
                putString(b, t.eventId);
                putString(b, t.itemId);
                putString(b, t.categoryId);
                putString(b, t.channel);
                b.put((byte) t.type).putLong(t.ts);
            }
            return Arrays.copyOf(b.array(), b.position());
        }

        @Override
        public User deserialize(String topic, byte[] data) {
            if (data == null) return null;
            ByteBuffer b = ByteBuffer.wrap(data);
            User u = new User();
            for (int i = b.getInt(); i > 0; i--) {
                Interest e = new Interest();
                e.dim = b.get();
                e.id = getString(b);
                e.f = b.getDouble();
                e.h = b.getDouble();
                e.t = b.getLong();
                u.ent.add(e);
            }
            for (int i = b.getInt(); i > 0; i--) {
                Touchpoint t = new Touchpoint();
                t.eventId = getString(b);
                t.itemId = getString(b);
                t.categoryId = getString(b);
                t.channel = getString(b);
                t.type = b.get();
                t.ts = b.getLong();
                u.journey.add(t);
            }
            return u;
        }

        static int len(String s) {
            return s == null ? 0 : s.length();
        }

        static void putString(ByteBuffer b, String s) {
            if (s == null) {
                b.putInt(-1);
                return;
            }
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            b.putInt(bytes.length).put(bytes);
        }

        static String getString(ByteBuffer b) {
            int n = b.getInt();
            if (n < 0) return null;
            String s = new String(b.array(), b.position(), n, StandardCharsets.UTF_8);
            b.position(b.position() + n);
            return s;
        }
    }

    // ------------------------------------------------------------------------- Avro

    /** The schemas of schemas/ by Confluent id; each record is written with the highest id of
     * its name (as tally frames its outputs), input read with the highest BehaviorEvent. */
    static final class Schemas {
        final Map<Integer, Schema> byId = new HashMap<>();

        Schemas(File dir) throws IOException {
            File[] files = dir.listFiles((d, n) -> n.matches("\\d+-.*\\.avsc"));
            if (files == null || files.length == 0) throw new IOException("no <id>-<name>.avsc in " + dir);
            for (File f : files) byId.put(Integer.parseInt(f.getName().split("-", 2)[0]), new Schema.Parser().parse(f));
        }

        int idOf(String fullName) {
            return byId.entrySet().stream().filter(e -> e.getValue().getFullName().equals(fullName))
                    .mapToInt(Map.Entry::getKey).max()
                    .orElseThrow(() -> new IllegalStateException("no schema of " + fullName));
        }
    }

    static final class Event {
        String eventId, userId, itemId, categoryId, channel;
        int type;
        long ts;
        Double value;
    }

    static String str(Object o) {
        return o == null ? null : o.toString();
    }

    // -------------------------------------------------------- numbers and sentences

    static double decay(double dtMs, double halfLifeMs) {
        return Math.pow(2.0, -dtMs / halfLifeMs);
    }

    static String article(int type) {
        return type == 0 || type == 4 ? "an" : "a";
    }

    /** tally's tl_fmt_num (lib/util.c): two significant digits below 10, none above. */
    static String fmtNum(double x, boolean plus) {
        StringBuilder s = new StringBuilder();
        if (x < 0) s.append('-');
        else if (plus) s.append('+');
        double a = x < 0 ? -x : x;
        if (!(a >= 1e-3 && a < 1e9)) return s.append(printfG2(a)).toString();
        final double[] pow10 = {1e-3, 1e-2, 1e-1, 1, 10, 100};
        final double[] scale = {1, 10, 100, 1000, 10000};
        int decimals = 0;
        for (int e = 0; e < 6; e++) {
            if (a < pow10[e] * 10) {
                decimals = Math.max(4 - e, 0);
                break;
            }
        }
        String digits = Long.toString((long) (a * scale[decimals] + 0.5));
        while (digits.length() <= decimals) digits = "0" + digits;
        s.append(digits, 0, digits.length() - decimals);
        if (decimals > 0) s.append('.').append(digits, digits.length() - decimals, digits.length());
        return s.toString();
    }

    /** C's printf("%.2g", a) for a >= 0: the exact binary value rounded half-even, as glibc. */
    static String printfG2(double a) {
        if (Double.isNaN(a)) return "nan";
        if (Double.isInfinite(a)) return "inf";
        if (a == 0) return "0";
        BigDecimal r = new BigDecimal(a).round(new MathContext(2, RoundingMode.HALF_EVEN));
        int exp = r.precision() - r.scale() - 1;
        if (exp < -4 || exp >= 2) {
            String m = r.movePointLeft(exp).stripTrailingZeros().toPlainString();
            return m + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        String p = r.stripTrailingZeros().toPlainString();
        return p;
    }

    /** tally's tl_fmt_duration: one unit, rounded half up ("40 s", "12 min", "2 h", "3 d"). */
    static String duration(long ms) {
        ms = Math.abs(ms);
        final long[] sizes = {86_400_000L, 3_600_000L, 60_000L, 1000L};
        final String[] units = {"d", "h", "min", "s"};
        for (int i = 0; i < sizes.length; i++)
            if (ms >= sizes[i]) return (ms + sizes[i] / 2) / sizes[i] + " " + units[i];
        return ms + " ms";
    }

    /** C's printf("%.2f", x): the exact value rounded half-even. */
    static String fixed2(double x) {
        return new BigDecimal(x).setScale(2, RoundingMode.HALF_EVEN).toPlainString();
    }

    // ------------------------------------------------------------------ the processor

    /** Progress towards the end offsets known at start; the main thread waits on done. */
    static final class Progress {
        final Map<Integer, Long> ends;
        final long total;
        final long[] tenths = new long[10];
        final AtomicLong processed = new AtomicLong(), deltas = new AtomicLong(), attributions = new AtomicLong(),
                undecodable = new AtomicLong();
        final CountDownLatch done = new CountDownLatch(1);
        final Map<Integer, Boolean> reached = new HashMap<>();
        volatile long first, last;

        Progress(Map<Integer, Long> begins, Map<Integer, Long> ends) {
            this.ends = ends;
            long t = 0;
            for (var e : ends.entrySet()) {
                long n = e.getValue() - begins.get(e.getKey());
                t += n;
                reached.put(e.getKey(), n <= 0);
            }
            total = t;
            if (!reached.containsValue(false)) done.countDown();
        }

        /** Counts one record; true when it completes the last partition. */
        synchronized boolean record(int partition, long offset) {
            long now = System.nanoTime();
            long n = processed.incrementAndGet();
            if (n == 1) first = now;
            last = now;
            for (int i = 0; i < 10; i++) if (n == (total * (i + 1)) / 10) tenths[i] = now;
            if (offset + 1 >= ends.get(partition) && !reached.get(partition)) {
                reached.put(partition, true);
                if (!reached.containsValue(false)) return true;
            }
            return false;
        }
    }

    static final class Peer implements Processor<byte[], byte[], String, byte[]> {
        final Params p;
        final Schemas schemas;
        final Progress progress;
        final Schema reader, interestSchema, attributionSchema, touchpointSchema, typeSchema;
        final int interestId, attributionId;
        final Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
        final GenericDatumWriter<GenericRecord> interestWriter, attributionWriter;
        final ByteArrayOutputStream buf = new ByteArrayOutputStream(1024);
        BinaryDecoder decoder;
        BinaryEncoder encoder;
        ProcessorContext<String, byte[]> ctx;
        KeyValueStore<String, User> store;

        Peer(Params p, Schemas schemas, Progress progress) {
            this.p = p;
            this.schemas = schemas;
            this.progress = progress;
            reader = schemas.byId.get(schemas.idOf("tally.BehaviorEvent"));
            interestId = schemas.idOf("tally.InterestDelta");
            attributionId = schemas.idOf("tally.Attribution");
            interestSchema = schemas.byId.get(interestId);
            attributionSchema = schemas.byId.get(attributionId);
            touchpointSchema = attributionSchema.getField("touchpoints").schema().getElementType();
            typeSchema = touchpointSchema.getField("type").schema();
            interestWriter = new GenericDatumWriter<>(interestSchema);
            attributionWriter = new GenericDatumWriter<>(attributionSchema);
        }

        @Override
        public void init(ProcessorContext<String, byte[]> context) {
            ctx = context;
            store = context.getStateStore("users");
        }

        @Override
        public void process(Record<byte[], byte[]> rec) {
            Event ev = decode(rec.value());
            if (ev != null) {
                User u = store.get(ev.userId);
                if (u == null) u = new User();
                String[] ids = {ev.categoryId, ev.itemId, ev.channel};
                for (int dim = 0; dim < DIMS.length; dim++)
                    if (p.dims[dim] && ids[dim] != null && !ids[dim].isEmpty()) applyDim(u, ev, dim, ids[dim], rec);
                if (ev.type == PURCHASE) attribute(u, ev, rec);
                if ((p.touchMask & (1 << ev.type)) != 0) journeyAdd(u, ev);
                store.put(ev.userId, u);
            } else {
                progress.undecodable.incrementAndGet();
            }
            RecordMetadata m = ctx.recordMetadata().orElseThrow();
            if (progress.record(m.partition(), m.offset())) {
                ctx.commit();
                progress.done.countDown();
            }
        }

        /** The event of a framed record; null when it is not one (tally would dead-letter it). */
        Event decode(byte[] v) {
            if (v == null || v.length < 5 || v[0] != 0) return null;
            int id = ((v[1] & 0xff) << 24) | ((v[2] & 0xff) << 16) | ((v[3] & 0xff) << 8) | (v[4] & 0xff);
            GenericDatumReader<GenericRecord> r = readers.computeIfAbsent(id, k -> {
                Schema w = schemas.byId.get(k);
                return w == null || !w.getFullName().equals(reader.getFullName()) ? null : new GenericDatumReader<>(w, reader);
            });
            if (r == null) return null;
            GenericRecord g;
            try {
                decoder = DecoderFactory.get().binaryDecoder(v, 5, v.length - 5, decoder);
                g = r.read(null, decoder);
            } catch (IOException | RuntimeException e) {
                return null;
            }
            Event ev = new Event();
            ev.eventId = str(g.get("event_id"));
            ev.userId = str(g.get("user_id"));
            ev.itemId = str(g.get("item_id"));
            ev.categoryId = str(g.get("category_id"));
            ev.channel = str(g.get("channel"));
            ev.type = reader.getField("type").schema().getEnumOrdinal(g.get("type").toString());
            ev.ts = (Long) g.get("ts");
            ev.value = (Double) g.get("value");
            return ev;
        }

        byte[] frame(int schemaId, GenericDatumWriter<GenericRecord> writer, GenericRecord r) {
            buf.reset();
            buf.write(0);
            buf.write(schemaId >>> 24);
            buf.write(schemaId >>> 16);
            buf.write(schemaId >>> 8);
            buf.write(schemaId);
            try {
                encoder = EncoderFactory.get().binaryEncoder(buf, encoder);
                writer.write(r, encoder);
                encoder.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return buf.toByteArray();
        }

        void emit(String sink, String userId, byte[] value, Record<byte[], byte[]> in) {
            ctx.forward(new Record<>(userId, value, in.timestamp()), sink);
        }

        // features/interest.c apply_dim
        void applyDim(User u, Event ev, int dim, String id, Record<byte[], byte[]> in) {
            final double H = p.halfLifeMs, heat = p.heat[ev.type];
            int self = -1;
            for (int i = 0; i < u.ent.size(); i++)
                if (u.ent.get(i).dim == dim && u.ent.get(i).id.equals(id)) self = i;
            boolean isNew = self < 0;
            if (isNew && p.maxInterests > 0 && u.ent.size() >= p.maxInterests) {
                int weakest = 0;   // the weakest entry, read at this event's time, makes room
                double wmin = Double.POSITIVE_INFINITY;
                for (int i = 0; i < u.ent.size(); i++) {
                    Interest o = u.ent.get(i);
                    double w = (p.alpha * o.f + p.beta * o.h) * decay((double) (ev.ts - o.t), H);
                    if (w < wmin) {
                        wmin = w;
                        weakest = i;
                    }
                }
                u.removeInterest(weakest);
            }
            if (isNew) {
                Interest e = new Interest();
                e.dim = dim;
                e.id = id;
                e.t = ev.ts;
                u.ent.add(e);
                self = u.ent.size() - 1;
            }
            Interest e = u.ent.get(self);
            final long storedT = e.t;
            final long asOf = Math.max(ev.ts, storedT);
            final double keep = decay((double) (asOf - storedT), H);
            final double fresh = decay((double) (asOf - ev.ts), H);
            double wb = p.alpha * e.f + p.beta * e.h;
            double decayPart = wb * keep - wb;
            double evidence = (p.alpha * 1.0 + p.beta * heat) * fresh;
            double wa = wb + decayPart + evidence;
            e.f = e.f * keep + fresh;
            e.h = e.h * keep + heat * fresh;
            e.t = asOf;

            int rank = 1;   // among the user's other entries of this dimension; the faded go
            for (int i = 0; i < u.ent.size(); i++) {
                Interest o = u.ent.get(i);
                if (i == self || o.dim != dim) continue;
                double w = (p.alpha * o.f + p.beta * o.h) * decay((double) (asOf - o.t), H);
                if (w < p.epsilon) {
                    int last = u.ent.size() - 1;
                    u.removeInterest(i);
                    if (self == last) self = i;
                    i--;
                    continue;
                }
                if (w > wa) rank++;
            }

            StringBuilder s = new StringBuilder(160);
            s.append(isNew ? "new interest in " : "interest in ").append(DIMS[dim]).append(' ').append(id);
            if (isNew) {
                s.append(": ").append(fmtNum(wa, false));
            } else {
                s.append(wa >= wb ? " rose from " : " fell from ").append(fmtNum(wb, false)).append(" to ")
                        .append(fmtNum(wa, false)).append(": ").append(fmtNum(evidence, true));
            }
            s.append(" from ").append(article(ev.type)).append(' ').append(PHRASES[ev.type]);
            if (ev.ts < asOf) s.append(" (a late event, ").append(duration(asOf - ev.ts)).append(" before)");
            if (!isNew) {
                s.append(", ").append(fmtNum(decayPart, true)).append(" decay since ")
                        .append(asOf == storedT ? "0 s" : duration(asOf - storedT)).append(" ago");
            }

            GenericData.Record r = new GenericData.Record(interestSchema);
            r.put("user_id", ev.userId);
            r.put("dim", DIMS[dim]);
            r.put("dim_id", id);
            r.put("event_id", ev.eventId);
            r.put("ts", asOf);
            r.put("f", e.f);
            r.put("h", e.h);
            r.put("weight_before", wb);
            r.put("weight_after", wa);
            r.put("decay_part", decayPart);
            r.put("evidence_part", evidence);
            r.put("rank", rank);
            r.put("explanation", s.toString());
            emit("interest", ev.userId, frame(interestId, interestWriter, r), in);
            progress.deltas.incrementAndGet();
        }

        // model/attribution.c attribute, journey_at
        void attribute(User u, Event ev, Record<byte[], byte[]> in) {
            List<Touchpoint> j = u.journey;
            int end = j.size();
            while (end > 0 && j.get(end - 1).ts > ev.ts) end--;
            int b = end;
            while (b > 0 && j.get(b - 1).ts >= ev.ts - p.lookbackMs) b--;
            int begin = end - b > p.maxTouchpoints ? end - p.maxTouchpoints : b;
            int n = end - begin;
            if (n == 0) return;   // a purchase without touchpoints: no record
            List<Touchpoint> tps = new ArrayList<>(j.subList(begin, end));
            Map<String, List<Double>> credits = new LinkedHashMap<>();
            for (String m : METHODS) credits.put(m, credits(m, tps, ev.ts));

            GenericData.Record r = new GenericData.Record(attributionSchema);
            r.put("conversion_event_id", ev.eventId);
            r.put("user_id", ev.userId);
            r.put("item_id", ev.itemId);
            r.put("category_id", ev.categoryId);
            r.put("ts", ev.ts);
            r.put("value", ev.value);
            List<GenericRecord> out = new ArrayList<>(n);
            for (Touchpoint t : tps) {
                GenericData.Record g = new GenericData.Record(touchpointSchema);
                g.put("event_id", t.eventId);
                g.put("item_id", t.itemId);
                g.put("category_id", t.categoryId);
                g.put("channel", t.channel);
                g.put("type", new GenericData.EnumSymbol(typeSchema, TYPES[t.type]));
                g.put("ts", t.ts);
                out.add(g);
            }
            r.put("touchpoints", out);
            r.put("credits", credits);
            r.put("explanation", explain(ev, tps, credits.get("time_decay")));
            if (p.resetOnConversion) j.subList(begin, end).clear();
            emit("attribution", ev.userId, frame(attributionId, attributionWriter, r), in);
            progress.attributions.incrementAndGet();
        }

        List<Double> credits(String method, List<Touchpoint> tps, long pts) {
            int n = tps.size();
            Double[] c = new Double[n];
            switch (method) {
                case "last_touch", "first_touch" -> {
                    Arrays.fill(c, 0.0);
                    c[method.equals("last_touch") ? n - 1 : 0] = 1.0;
                }
                case "linear" -> Arrays.fill(c, 1.0 / n);
                case "time_decay" -> {
                    double[] w = new double[n];
                    double sum = 0;
                    for (int i = 0; i < n; i++) {
                        w[i] = decay((double) (pts - tps.get(i).ts), p.timeDecayHalfLifeMs);
                        sum += w[i];
                    }
                    for (int i = 0; i < n; i++) c[i] = w[i] / sum;
                }
                default -> {   // position_based
                    if (n == 1) {
                        c[0] = 1.0;
                    } else if (n == 2) {
                        c[0] = c[1] = 0.5;
                    } else {
                        Arrays.fill(c, 0.2 / (n - 2));
                        c[0] = c[n - 1] = 0.4;
                    }
                }
            }
            return Arrays.asList(c);
        }

        static String phrase(Touchpoint t, long pts, boolean article) {
            return (article ? article(t.type) : "the") + " " + PHRASES[t.type] + " of item " + t.itemId
                    + (t.channel != null ? " on " + t.channel : "") + " " + duration(pts - t.ts) + " before";
        }

        /** Credits the sentence cannot tell apart: the same at the two decimals it shows. */
        static boolean sameCredit(double x, double y) {
            return fixed2(x).equals(fixed2(y));
        }

        static String explain(Event ev, List<Touchpoint> tps, List<Double> td) {
            int n = tps.size();
            if (n == 1) return "purchase of item " + ev.itemId + ": all credit to " + phrase(tps.get(0), ev.ts, true);
            int top = 0, ties = 0;
            for (int i = 1; i < n; i++)
                if (td.get(i) > td.get(top)) top = i;
            for (int i = 0; i < n; i++) {
                if (sameCredit(td.get(i), td.get(top))) {
                    ties++;
                    if (i > top) top = i;   // the latest of the tied
                }
            }
            String decay;
            if (ties == n) {
                decay = "time decay gives each the same (" + fixed2(td.get(top)) + ")";
            } else if (ties == 1) {
                decay = "time decay gives the most (" + fixed2(td.get(top)) + ") to " + phrase(tps.get(top), ev.ts, false);
            } else {
                decay = "time decay gives the most (" + fixed2(td.get(top)) + " each) to " + ties
                        + " touchpoints, the latest " + phrase(tps.get(top), ev.ts, false);
            }
            return "purchase of item " + ev.itemId + " after " + n + " touchpoints over " + duration(ev.ts - tps.get(0).ts)
                    + ": last touch " + phrase(tps.get(n - 1), ev.ts, true) + ", first " + phrase(tps.get(0), ev.ts, true)
                    + "; " + decay;
        }

        // model/attribution.c journey_add
        void journeyAdd(User u, Event ev) {
            List<Touchpoint> j = u.journey;
            Touchpoint t = new Touchpoint();
            t.eventId = ev.eventId;
            t.itemId = ev.itemId;
            t.categoryId = ev.categoryId;
            t.channel = ev.channel;
            t.type = ev.type;
            t.ts = ev.ts;
            int pos = j.size();   // after every entry with ts <= this one
            while (pos > 0 && j.get(pos - 1).ts > ev.ts) pos--;
            j.add(pos, t);
            if (j.size() > p.maxTouchpoints) j.subList(0, j.size() - p.maxTouchpoints).clear();
            long newest = j.get(j.size() - 1).ts;
            int old = 0;
            while (old < j.size() && j.get(old).ts < newest - p.lookbackMs) old++;
            j.subList(0, old).clear();
        }
    }

    // ------------------------------------------------------------------------- main

    static String usage() {
        return "usage: StreamsPeer --bootstrap HOST:PORT --input TOPIC --application-id ID --state-dir DIR\n"
                + "    --guarantee at_least_once|exactly_once_v2 --interest-topic TOPIC --attribution-topic TOPIC\n"
                + "    --schema-dir DIR [--commit-interval-ms MS] [--cache-mb MB] [-X key=value ...]";
    }

    public static void main(String[] argv) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        Map<String, String> a = new HashMap<>();
        Params p = new Params();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (argv[i].equals("-X")) {
                String[] kv = argv[i + 1].split("=", 2);
                if (kv.length != 2) throw new IllegalArgumentException("-X " + argv[i + 1] + ": not key=value");
                p.set(kv[0], kv[1]);
            } else {
                a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
            }
        }
        for (String k : List.of("bootstrap", "input", "application-id", "state-dir", "guarantee", "interest-topic",
                "attribution-topic", "schema-dir")) {
            if (!a.containsKey(k) || argv.length % 2 != 0) {
                System.err.println(usage());
                System.exit(2);
            }
        }
        Schemas schemas = new Schemas(new File(a.get("schema-dir")));
        String input = a.get("input"), appId = a.get("application-id");

        Map<Integer, Long> begins, ends;
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap")))) {
            List<TopicPartition> parts = admin.describeTopics(List.of(input)).allTopicNames().get().get(input)
                    .partitions().stream().map(x -> new TopicPartition(input, x.partition())).toList();
            begins = offsets(admin, parts, OffsetSpec.earliest());
            ends = offsets(admin, parts, OffsetSpec.latest());
        }
        Progress progress = new Progress(begins, ends);

        Topology topology = new Topology();
        topology.addSource("events", Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer(), input);
        topology.addProcessor("peer", () -> new Peer(p, schemas, progress), "events");
        UserSerde serde = new UserSerde();
        topology.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("users"), Serdes.String(),
                Serdes.serdeFrom(serde, serde)).withCachingEnabled(), "peer");
        topology.addSink("interest", a.get("interest-topic"), Serdes.String().serializer(),
                Serdes.ByteArray().serializer(), "peer");
        topology.addSink("attribution", a.get("attribution-topic"), Serdes.String().serializer(),
                Serdes.ByteArray().serializer(), "peer");

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.get("guarantee"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, a.get("state-dir"));
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.parseLong(a.getOrDefault("cache-mb", "256")) << 20);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");   // tally's
        if (a.containsKey("commit-interval-ms")) props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.get("commit-interval-ms"));

        AtomicReference<Throwable> failure = new AtomicReference<>();
        KafkaStreams streams = new KafkaStreams(topology, props);
        streams.setUncaughtExceptionHandler(e -> {
            failure.set(e);
            progress.done.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        progress.done.await();
        if (!streams.close(Duration.ofSeconds(60))) fail("did not close within 60 s");
        if (failure.get() != null) fail("stopped: " + failure.get());

        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap")))) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(appId)
                    .partitionsToOffsetAndMetadata().get(60, TimeUnit.SECONDS);
            for (var e : ends.entrySet()) {
                OffsetAndMetadata c = committed.get(new TopicPartition(input, e.getKey()));
                long at = c == null ? begins.get(e.getKey()) : c.offset();
                if (at < e.getValue()) fail("partition " + e.getKey() + " committed at " + at + ", end " + e.getValue());
            }
        }
        double secs = (progress.last - progress.first) / 1e9;
        String tenths = Arrays.stream(progress.tenths).mapToObj(t -> String.format("%.3f", (t - progress.first) / 1e9))
                .collect(Collectors.joining(","));
        System.out.printf("streams-peer: events=%d interest_deltas=%d attributions=%d undecodable=%d seconds=%.3f tenths=%s%n",
                progress.processed.get(), progress.deltas.get(), progress.attributions.get(), progress.undecodable.get(),
                secs, tenths);
    }

    static Map<Integer, Long> offsets(Admin admin, List<TopicPartition> parts, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> q = new HashMap<>();
        for (TopicPartition tp : parts) q.put(tp, spec);
        Map<Integer, Long> out = new HashMap<>();
        admin.listOffsets(q).all().get(60, TimeUnit.SECONDS).forEach((tp, r) -> out.put(tp.partition(), r.offset()));
        return out;
    }

    static void fail(String why) {
        System.err.println("streams-peer: " + why);
        System.exit(1);
    }
}
