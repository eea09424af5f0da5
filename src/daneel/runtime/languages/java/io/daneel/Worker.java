package io.daneel;

import java.io.File;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * daneel's Java worker: loads a {@link Component} and answers daneel's calls over a Unix socket.
 *
 * <p>Usage: {@code java -cp ... io.daneel.Worker SOCKET CLASS SCAN PARAMETERS_JSON}, where CLASS may be
 * empty to find the one class implementing Component in the class folders and jars SCAN lists. Frames
 * are {@code u32 length | u32 id | u32 header length | JSON header | float64 blobs}, little-endian
 * (daneel/runtime/languages/wire.py). It exits when daneel closes the socket.
 */
public final class Worker {
    static final String[] OPTIONAL = {
        "predict", "transform_input", "transform_output", "route", "aggregate", "send_feedback",
        "health_status", "init_metadata", "tags", "metrics",
    };

    private final Component model;
    private final List<String> methods;
    private final Map<String, Object> hello;
    private final SocketChannel channel;

    private Worker(Component model, List<String> methods, Map<String, Object> hello, SocketChannel channel) {
        this.model = model;
        this.methods = methods;
        this.hello = hello;
        this.channel = channel;
    }

    /** The optional methods the class implements itself. */
    static List<String> implemented(Component model) {
        List<String> found = new ArrayList<>();
        for (String name : OPTIONAL) {
            for (Method method : model.getClass().getMethods()) {
                if (method.getName().equals(name) && method.getDeclaringClass() != Component.class) {
                    found.add(name);
                    break;
                }
            }
        }
        return found;
    }

    /** The greeting each connection starts with: the methods and metadata, or why there are none. */
    static Map<String, Object> greeting(Component model, List<String> methods) {
        Map<String, Object> header = new LinkedHashMap<>();
        try {
            Map<String, Object> hello = new LinkedHashMap<>();
            hello.put("methods", methods);
            hello.put("metadata", methods.contains("init_metadata") ? model.init_metadata() : null);
            hello.put("runtime", "java " + System.getProperty("java.version"));
            hello.put("class", model.getClass().getName());
            header.put("hello", hello);
        } catch (Exception error) {
            header.put("error", "init_metadata failed: " + error);
        }
        return header;
    }

    public static void main(String[] args) throws Exception {
        Component model;
        try {
            Class<?> cls = args[1].isEmpty() ? find(args[2]) : Class.forName(args[1]);
            if (!Component.class.isAssignableFrom(cls)) {
                throw new IllegalArgumentException(cls.getName() + " does not implement io.daneel.Component");
            }
            model = (Component) cls.getDeclaredConstructor().newInstance();
            model.init(asMap(Json.parse(args[3])));
        } catch (Throwable error) {
            System.err.println("daneel worker: loading the component failed: " + error);
            error.printStackTrace();
            System.exit(3);
            return;
        }
        // One connection per thread, each answering its own requests as they come: no hand-over between threads.
        List<String> methods = implemented(model);
        Map<String, Object> hello = greeting(model, methods);
        int threads = Math.max(2, Runtime.getRuntime().availableProcessors());
        for (int i = 0; i < threads; i++) {
            SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(args[0]));
            Worker worker = new Worker(model, methods, hello, channel);
            Thread thread = new Thread(() -> {
                try {
                    worker.serve();
                } catch (IOException gone) {
                    // daneel has gone
                }
                System.exit(0);
            }, "daneel-worker-" + i);
            thread.start();
        }
    }

    /** The one class implementing Component among the classes of the folders and jars in `scan`. */
    static Class<?> find(String scan) throws Exception {
        java.util.Set<String> found = new java.util.LinkedHashSet<>();
        for (String root : scan.split(File.pathSeparator)) {
            if (root.isEmpty()) continue;
            for (String name : classNames(Path.of(root))) {
                try {
                    Class<?> cls = Class.forName(name, false, Worker.class.getClassLoader());
                    int mods = cls.getModifiers();
                    if (Component.class.isAssignableFrom(cls) && !cls.isInterface() && !Modifier.isAbstract(mods)
                            && Modifier.isPublic(mods)) {
                        found.add(name);
                    }
                } catch (Throwable unloadable) {
                    // a class whose dependencies are missing is not the component
                }
            }
        }
        if (found.size() != 1) {
            throw new IllegalArgumentException(found.isEmpty()
                ? "no public class implements io.daneel.Component in " + scan
                : "several classes implement io.daneel.Component (" + String.join(", ", found)
                    + "); name one as implementation in daneel.yaml");
        }
        return Class.forName(found.iterator().next());
    }

    static List<String> classNames(Path root) throws IOException {
        List<String> names = new ArrayList<>();
        if (Files.isDirectory(root)) {
            try (Stream<Path> paths = Files.walk(root)) {
                paths.filter(p -> p.toString().endsWith(".class")).forEach(p -> names.add(className(root.relativize(p).toString())));
            }
        } else if (root.toString().endsWith(".jar") && Files.isRegularFile(root)) {
            try (JarFile jar = new JarFile(root.toFile())) {
                for (Enumeration<JarEntry> entries = jar.entries(); entries.hasMoreElements(); ) {
                    String entry = entries.nextElement().getName();
                    if (entry.endsWith(".class") && !entry.startsWith("META-INF")) names.add(className(entry));
                }
            }
        }
        names.removeIf(n -> n.contains("$") || n.startsWith("io.daneel."));
        return names;
    }

    private static String className(String file) {
        return file.substring(0, file.length() - ".class".length()).replace('/', '.').replace('\\', '.');
    }

    private void serve() throws IOException {
        send(0, new LinkedHashMap<>(hello), new ArrayList<>());
        ByteBuffer prefix = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        while (true) {
            prefix.clear();
            if (!fill(prefix)) return;
            ByteBuffer body = ByteBuffer.allocate(prefix.getInt(0)).order(ByteOrder.LITTLE_ENDIAN);
            if (!fill(body)) return;
            answer(body);
        }
    }

    private boolean fill(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) return false;
        }
        buffer.flip();
        return true;
    }

    private void answer(ByteBuffer body) {
        int id = body.getInt(0);
        Map<String, Object> out = new LinkedHashMap<>();
        List<byte[]> blobs = new ArrayList<>();
        try {
            int size = body.getInt(4);
            Map<String, Object> request = asMap(Json.parse(new String(body.array(), 8, size, StandardCharsets.UTF_8)));
            List<ByteBuffer> input = new ArrayList<>();
            int at = 8 + size;
            for (Object n : list(request.get("blobs"))) {
                int length = ((Number) n).intValue();
                input.add(ByteBuffer.wrap(body.array(), at, length).slice().order(ByteOrder.LITTLE_ENDIAN));
                at += length;
            }
            call(String.valueOf(request.get("m")), request, input, out, blobs);
        } catch (Invalid error) {
            out.clear();
            blobs.clear();
            out.put("error", error.getMessage());
            out.put("invalid", error.field);
        } catch (Throwable error) {
            out.clear();
            blobs.clear();
            out.put("error", String.valueOf(error.getMessage()));
            out.put("type", error.getClass().getSimpleName());
        }
        try {
            send(id, out, blobs);
        } catch (IOException gone) {
            System.exit(0);  // daneel has gone
        }
    }

    private void call(String method, Map<String, Object> request, List<ByteBuffer> input, Map<String, Object> out,
            List<byte[]> blobs) throws Exception {
        if (!methods.contains(method)) {
            out.put("error", method + " is not implemented");
            out.put("unimplemented", true);
            return;
        }
        String[] names = strings(request.get("names"));
        switch (method) {
            case "predict": out.put("x", rows(model.predict(matrix(request.get("x"), input, "data"), names), blobs)); break;
            case "transform_input":
                out.put("x", rows(model.transform_input(matrix(request.get("x"), input, "data"), names), blobs));
                break;
            case "transform_output":
                out.put("x", rows(model.transform_output(matrix(request.get("x"), input, "data"), names), blobs));
                break;
            case "route": out.put("x", json(model.route(matrix(request.get("x"), input, "data"), names))); return;
            case "aggregate": {
                List<double[][]> xs = new ArrayList<>();
                List<String[]> allNames = new ArrayList<>();
                int i = 0;
                for (Object x : list(request.get("xs"))) xs.add(matrix(x, input, "[" + i++ + "].data"));
                for (Object n : list(request.get("names"))) allNames.add(strings(n));
                out.put("x", rows(model.aggregate(xs, allNames), blobs));
                break;
            }
            case "send_feedback": {
                Object routing = request.get("routing");
                Object truth = request.get("truth");
                double reward = request.get("reward") instanceof Number ? ((Number) request.get("reward")).doubleValue() : 0;
                model.send_feedback(matrix(request.get("x"), input, "request.data"), names, reward,
                    isNull(truth) ? null : matrix(truth, input, "truth"),
                    routing instanceof Number ? ((Number) routing).intValue() : null);
                out.put("x", json(null));
                break;
            }
            case "health_status": out.put("x", json(model.health_status())); return;
            default: throw new Invalid("method", "unknown method " + method);
        }
        if (methods.contains("tags")) out.put("tags", model.tags());
        if (methods.contains("metrics")) out.put("metrics", model.metrics());
        String[] classNames = model.class_names();
        if (classNames != null) out.put("names", java.util.Arrays.asList(classNames));
    }

    private static boolean isNull(Object described) {
        return described == null || (described instanceof Map && ((Map<?, ?>) described).containsKey("json")
            && ((Map<?, ?>) described).get("json") == null);
    }

    private static Map<String, Object> json(Object value) {
        Map<String, Object> described = new LinkedHashMap<>();
        described.put("json", value);
        return described;
    }

    /** Rows of numbers, from a float64 blob of at most two dimensions or a JSON list of numbers or of rows. */
    static double[][] matrix(Object described, List<ByteBuffer> blobs, String field) {
        Map<String, Object> map = asMap(described);
        if (map.containsKey("f64")) {
            List<Object> shape = list(map.get("f64"));
            if (shape.size() > 2) {
                throw new Invalid(field, "a Java component takes numbers in one or two dimensions; got shape " + shape);
            }
            ByteBuffer blob = blobs.get(((Number) map.get("blob")).intValue());
            int rows = shape.size() == 2 ? ((Number) shape.get(0)).intValue() : 1;
            int cols = shape.size() == 0 ? 1 : ((Number) shape.get(shape.size() - 1)).intValue();
            double[][] X = new double[rows][cols];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) X[r][c] = blob.getDouble((r * cols + c) * 8);
            }
            return X;
        }
        Object value = map.get("json");
        if (value instanceof List) {
            List<Object> items = list(value);
            boolean nested = !items.isEmpty() && items.get(0) instanceof List;
            double[][] X = new double[nested ? items.size() : 1][];
            for (int r = 0; r < X.length; r++) X[r] = numbers(nested ? list(items.get(r)) : items, field);
            return X;
        }
        String got = value == null ? "nothing" : value instanceof String ? "a string" : "a " + value.getClass().getSimpleName();
        throw new Invalid(field, "a Java component takes rows of numbers; got " + got);
    }

    private static double[] numbers(List<Object> items, String field) {
        double[] row = new double[items.size()];
        for (int i = 0; i < row.length; i++) {
            if (!(items.get(i) instanceof Number)) {
                throw new Invalid(field, "a Java component takes rows of numbers; got " + Json.write(items.get(i)));
            }
            row[i] = ((Number) items.get(i)).doubleValue();
        }
        return row;
    }

    static Map<String, Object> rows(double[][] X, List<byte[]> blobs) {
        if (X == null) return json(null);
        int cols = X.length == 0 ? 0 : X[0].length;
        ByteBuffer out = ByteBuffer.allocate(X.length * cols * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (double[] row : X) {
            if (row.length != cols) throw new IllegalStateException("the rows returned have different lengths");
            for (double v : row) out.putDouble(v);
        }
        blobs.add(out.array());
        Map<String, Object> described = new LinkedHashMap<>();
        described.put("f64", List.of(X.length, cols));
        described.put("blob", blobs.size() - 1);
        return described;
    }

    private void send(int id, Map<String, Object> header, List<byte[]> blobs) throws IOException {
        if (!blobs.isEmpty()) {
            List<Integer> sizes = new ArrayList<>();
            for (byte[] blob : blobs) sizes.add(blob.length);
            header.put("blobs", sizes);
        }
        byte[] head = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int size = 0;
        for (byte[] blob : blobs) size += blob.length;
        ByteBuffer frame = ByteBuffer.allocate(12 + head.length + size).order(ByteOrder.LITTLE_ENDIAN);
        frame.putInt(8 + head.length + size).putInt(id).putInt(head.length).put(head);
        for (byte[] blob : blobs) frame.put(blob);
        frame.flip();
        while (frame.hasRemaining()) channel.write(frame);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> asMap(Object value) {
        return value instanceof Map ? (Map<String, Object>) value : new LinkedHashMap<>();
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object value) {
        return value instanceof List ? (List<Object>) value : new ArrayList<>();
    }

    private static String[] strings(Object value) {
        List<Object> items = list(value);
        String[] out = new String[items.size()];
        for (int i = 0; i < out.length; i++) out[i] = String.valueOf(items.get(i));
        return out;
    }

    /** Input a Java component cannot take: a 400 naming the field. */
    static final class Invalid extends RuntimeException {
        final String field;

        Invalid(String field, String message) {
            super(message);
            this.field = field;
        }
    }
}
