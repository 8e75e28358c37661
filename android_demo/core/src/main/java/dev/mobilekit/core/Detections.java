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

/**
 * A detector's outputs -> boxes in the image's pixels. A default detector file decodes and suppresses itself
 * (TFLite_Detection_PostProcess: boxes, classes, scores, count); a raw-outputs file gives each anchor's box deltas and
 * class scores, which {@link #fromRaw} decodes against the anchors and suppresses as model.json's detection section
 * says (the same arithmetic as mobilekit's numpy reference, in double).
 */
public final class Detections {
    private Detections() {
    }

    /** One detection: its class, label, score and box (left, top, right, bottom) in the image's pixels. */
    public static final class Box {
        public final int classIndex;
        public final String label;
        public final float score;
        public final double left;
        public final double top;
        public final double right;
        public final double bottom;

        Box(int classIndex, String label, float score, double[] yxyx, int width, int height) {
            this.classIndex = classIndex;
            this.label = label;
            this.score = score;
            this.left = clip(yxyx[1]) * width;
            this.top = clip(yxyx[0]) * height;
            this.right = clip(yxyx[3]) * width;
            this.bottom = clip(yxyx[2]) * height;
        }

        private static double clip(double v) {
            return Math.min(1.0, Math.max(0.0, v));
        }
    }

    /** Output {@code index}'s bytes (little-endian, its dtype) -> float values: (q - zero_point) * scale. */
    public static float[] values(ModelSpec spec, int index, byte[] bytes) {
        String dtype = spec.outputDtypes[index];
        int size = dtype.equals("float32") ? 4 : dtype.equals("int16") ? 2 : 1;
        float[] out = new float[bytes.length / size];
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < out.length; i++) {
            if (size == 4) {
                out[i] = buf.getFloat();
            } else {
                int q = size == 2 ? buf.getShort() : dtype.equals("int8") ? buf.get() : (buf.get() & 0xFF);
                out[i] = (q - spec.outputZeroPoints[index]) * spec.outputScales[index];
            }
        }
        return out;
    }

    /** The post-processing op's four outputs (bytes in model.json's output order) -> its detections, in pixels of a
     * {@code width} x {@code height} image (the whole image was stretched to the input). */
    public static List<Box> fromPostProcess(ModelSpec spec, byte[][] outputs, List<String> labels, int width,
                                            int height) {
        float[] boxes = values(spec, spec.output("boxes"), outputs[spec.output("boxes")]);
        float[] classes = values(spec, spec.output("classes"), outputs[spec.output("classes")]);
        float[] scores = values(spec, spec.output("scores"), outputs[spec.output("scores")]);
        int count = (int) values(spec, spec.output("count"), outputs[spec.output("count")])[0];
        List<Box> out = new ArrayList<>();
        for (int i = 0; i < Math.min(count, scores.length); i++) {
            int c = (int) classes[i];
            double[] yxyx = {boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]};
            out.add(new Box(c, label(labels, c), scores[i], yxyx, width, height));
        }
        return out;
    }

    /** A raw-outputs file's deltas and class scores (bytes in model.json's output order) -> each anchor decoded,
     * its best class kept when above the score threshold, then greedy NMS: in pixels of a {@code width} x
     * {@code height} image. {@code anchors}: (yc, xc, h, w) rows, normalised, in the deltas' order. */
    public static List<Box> fromRaw(ModelSpec spec, byte[][] outputs, float[][] anchors, List<String> labels,
                                    int width, int height) {
        float[] deltas = values(spec, spec.output("deltas"), outputs[spec.output("deltas")]);
        float[] scores = values(spec, spec.output("class_scores"), outputs[spec.output("class_scores")]);
        int n = anchors.length;
        if (deltas.length != 4 * n || scores.length % n != 0) {
            throw new IllegalArgumentException("outputs do not match the " + n + " anchors");
        }
        int classes = scores.length / n;
        List<Integer> candidates = new ArrayList<>();
        int[] best = new int[n];
        for (int a = 0; a < n; a++) {
            int c = 0;
            for (int k = 1; k < classes; k++) {
                if (scores[a * classes + k] > scores[a * classes + c]) {
                    c = k;  // ties keep the lower class, as argmax
                }
            }
            best[a] = c;
            if (scores[a * classes + c] > spec.scoreThreshold) {
                candidates.add(a);
            }
        }
        double[][] decoded = new double[n][];
        for (int a : candidates) {
            decoded[a] = decode(spec.decodeScales, deltas, anchors[a], a);
        }
        Integer[] order = candidates.toArray(new Integer[0]);
        Arrays.sort(order, (x, y) -> {
            float sx = scores[x * classes + best[x]];
            float sy = scores[y * classes + best[y]];
            return sx != sy ? Float.compare(sy, sx) : Integer.compare(x, y);
        });
        List<Integer> kept = new ArrayList<>();
        for (int a : order) {
            if (kept.size() == spec.maxDetections) {
                break;
            }
            boolean suppressed = false;
            for (int k : kept) {
                if (iou(decoded[a], decoded[k]) > spec.nmsIou) {
                    suppressed = true;
                    break;
                }
            }
            if (!suppressed) {
                kept.add(a);
            }
        }
        List<Box> out = new ArrayList<>();
        for (int a : kept) {
            out.add(new Box(best[a], label(labels, best[a]), scores[a * classes + best[a]], decoded[a], width, height));
        }
        return out;
    }

    /** Anchor {@code a}'s box (ymin, xmin, ymax, xmax), normalised, from its deltas: model.json's detection.decode. */
    static double[] decode(double[] scales, float[] deltas, float[] anchor, int a) {
        double yc = deltas[4 * a] / scales[0] * anchor[2] + anchor[0];
        double xc = deltas[4 * a + 1] / scales[1] * anchor[3] + anchor[1];
        double h = Math.exp(deltas[4 * a + 2] / scales[2]) * anchor[2];
        double w = Math.exp(deltas[4 * a + 3] / scales[3]) * anchor[3];
        return new double[] {yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2};
    }

    static double iou(double[] a, double[] b) {
        double inter = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]))
                * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
        double union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
        return union > 0 ? inter / union : 0;
    }

    private static String label(List<String> labels, int c) {
        return c >= 0 && c < labels.size() ? labels.get(c) : "class " + c;
    }

    /** anchors.txt (one "yc xc h w" line an anchor) -> rows. */
    public static float[][] readAnchors(String text) {
        List<float[]> rows = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.trim().isEmpty()) {
                continue;
            }
            String[] parts = line.trim().split("\\s+");
            if (parts.length != 4) {
                throw new IllegalArgumentException("anchors: four numbers a line expected; received '" + line + "'");
            }
            float[] row = new float[4];
            for (int i = 0; i < 4; i++) {
                row[i] = Float.parseFloat(parts[i]);
            }
            rows.add(row);
        }
        return rows.toArray(new float[0][]);
    }

    /**
     * {@code Detections MODEL_JSON LABELS ANCHORS|- WIDTH HEIGHT OUTPUT_BIN...}: one image's output tensors (in
     * model.json's output order) -> lines "index<TAB>class<TAB>score<TAB>left<TAB>top<TAB>right<TAB>bottom<TAB>label".
     */
    public static void main(String[] args) throws IOException {
        if (args.length < 6) {
            System.err.println("usage: Detections MODEL_JSON LABELS ANCHORS|- WIDTH HEIGHT OUTPUT_BIN...");
            System.exit(2);
        }
        ModelSpec spec = ModelSpec.parse(read(args[0]));
        List<String> labels = Files.readAllLines(new File(args[1]).toPath(), StandardCharsets.UTF_8);
        int width = Integer.parseInt(args[3]);
        int height = Integer.parseInt(args[4]);
        byte[][] outputs = new byte[args.length - 5][];
        for (int i = 5; i < args.length; i++) {
            outputs[i - 5] = Files.readAllBytes(new File(args[i]).toPath());
        }
        List<Box> boxes = spec.postProcessingInModel ? fromPostProcess(spec, outputs, labels, width, height)
                : fromRaw(spec, outputs, readAnchors(read(args[2])), labels, width, height);
        int i = 0;
        for (Box b : boxes) {
            System.out.println(i++ + "\t" + b.classIndex + "\t" + b.score + "\t" + b.left + "\t" + b.top + "\t" + b.right
                    + "\t" + b.bottom + "\t" + b.label);
        }
    }

    private static String read(String path) throws IOException {
        return new String(Files.readAllBytes(new File(path).toPath()), StandardCharsets.UTF_8);
    }
}
