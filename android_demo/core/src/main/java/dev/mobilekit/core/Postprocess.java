package dev.mobilekit.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The model's output tensor -> probabilities (dequantized) -> the top k classes with their labels. */
public final class Postprocess {
    private Postprocess() {
    }

    /** One class of the ranking. */
    public static final class Ranked {
        public final int index;
        public final String label;
        public final float probability;

        Ranked(int index, String label, float probability) {
            this.index = index;
            this.label = label;
            this.probability = probability;
        }
    }

    /** Output bytes (int8/uint8, int16 or float32, little-endian) -> float values: (q - zero_point) * scale. */
    public static float[] dequantize(ModelSpec spec, byte[] output) {
        float[] p = new float[spec.numClasses];
        ByteBuffer buf = ByteBuffer.wrap(output).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < p.length; i++) {
            if (spec.outputDtype.equals("float32")) {
                p[i] = buf.getFloat();
            } else {
                int q = spec.outputDtype.equals("int16") ? buf.getShort()
                        : spec.outputDtype.equals("int8") ? buf.get() : (buf.get() & 0xFF);
                p[i] = (q - spec.outputZeroPoint) * spec.outputScale;
            }
        }
        return p;
    }

    /** The k most probable classes, best first; ties keep the lower index first (like NumPy's argmax). */
    public static List<Ranked> topK(ModelSpec spec, byte[] output, List<String> labels, int k) {
        float[] p = dequantize(spec, output);
        Integer[] order = new Integer[p.length];
        for (int i = 0; i < p.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> p[a] != p[b] ? Float.compare(p[b], p[a]) : Integer.compare(a, b));
        List<Ranked> out = new ArrayList<>();
        for (int i = 0; i < Math.min(k, p.length); i++) {
            out.add(new Ranked(order[i], labels.get(order[i]), p[order[i]]));
        }
        return out;
    }

    /**
     * {@code Postprocess MODEL_JSON LABELS K OUTPUT_BIN [OUTPUT_BIN ...]}: for each output tensor file, prints its top
     * k as lines "file<TAB>rank<TAB>index<TAB>probability<TAB>label".
     */
    public static void main(String[] args) throws IOException {
        if (args.length < 4) {
            System.err.println("usage: Postprocess MODEL_JSON LABELS K OUTPUT_BIN [OUTPUT_BIN ...]");
            System.exit(2);
        }
        ModelSpec spec = ModelSpec.parse(new String(Files.readAllBytes(new File(args[0]).toPath()),
                StandardCharsets.UTF_8));
        List<String> labels = Files.readAllLines(new File(args[1]).toPath(), StandardCharsets.UTF_8);
        int k = Integer.parseInt(args[2]);
        for (int i = 3; i < args.length; i++) {
            byte[] output = Files.readAllBytes(new File(args[i]).toPath());
            int rank = 1;
            for (Ranked r : topK(spec, output, labels, k)) {
                System.out.println(args[i] + "\t" + rank++ + "\t" + r.index + "\t" + r.probability + "\t" + r.label);
            }
        }
    }
}
