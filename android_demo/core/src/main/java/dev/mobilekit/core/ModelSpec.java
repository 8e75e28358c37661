package dev.mobilekit.core;

import java.util.List;
import java.util.Map;

/** What the app needs to know about the model, read from the model.json that `mobilekit export android` writes. */
public final class ModelSpec {
    public final String model;
    public final String sha256;
    public final String labels;
    public final int numClasses;
    public final int height;
    public final int width;
    public final int channels;
    public final String inputDtype;
    public final float inputScale;
    public final int inputZeroPoint;
    public final String outputDtype;
    public final float outputScale;
    public final int outputZeroPoint;
    /** float_input = uint8_pixel * pixelScale + pixelOffset (float32). */
    public final float pixelScale;
    public final float pixelOffset;
    /** "classification" (one output: class probabilities) or "detection" (see {@link Detections}). */
    public final String task;
    /** A detector's outputs in the file's output order: their names ("boxes", "classes", "scores", "count", or a
     * raw-outputs file's "deltas" and "class_scores"), dtypes and quantization (scale 1, zero point 0: float32). */
    public final String[] outputNames;
    public final String[] outputDtypes;
    public final float[] outputScales;
    public final int[] outputZeroPoints;
    /** Each output's element count (the product of its shape in model.json). */
    public final int[] outputElements;
    /** A detector's post-processing settings: whether the model decodes and suppresses itself (else the app does,
     * against the anchors file), the score threshold, NMS IoU, most detections, and the decode's four scales. */
    public final boolean postProcessingInModel;
    public final float scoreThreshold;
    public final double nmsIou;
    public final int maxDetections;
    public final double[] decodeScales;

    private ModelSpec(Map<String, Object> doc) {
        model = str(doc, "model");
        sha256 = str(doc, "sha256");
        labels = str(doc, "labels");
        numClasses = (int) num(doc, "num_classes");
        Map<String, Object> in = obj(doc, "input");
        List<?> shape = (List<?>) in.get("shape");
        if (shape == null || shape.size() != 4 || ((Double) shape.get(0)) != 1.0) {
            throw new IllegalArgumentException("model.json: input.shape must be [1, height, width, channels]");
        }
        height = ((Double) shape.get(1)).intValue();
        width = ((Double) shape.get(2)).intValue();
        channels = ((Double) shape.get(3)).intValue();
        inputDtype = str(in, "dtype");
        // A float32 input or output has no quantization (null in model.json): values go in and come out as they are.
        inputScale = inputDtype.equals("float32") ? 1f : (float) num(in, "scale");
        inputZeroPoint = inputDtype.equals("float32") ? 0 : (int) num(in, "zero_point");
        task = doc.containsKey("task") ? str(doc, "task") : "classification";
        if (task.equals("detection")) {
            List<?> outs = (List<?>) doc.get("outputs");
            if (outs == null || outs.isEmpty()) {
                throw new IllegalArgumentException("model.json: a detector needs its 'outputs' listed");
            }
            int n = outs.size();
            outputNames = new String[n];
            outputDtypes = new String[n];
            outputScales = new float[n];
            outputZeroPoints = new int[n];
            outputElements = new int[n];
            for (int i = 0; i < n; i++) {
                @SuppressWarnings("unchecked")
                Map<String, Object> o = (Map<String, Object>) outs.get(i);
                outputNames[i] = str(o, "name");
                outputElements[i] = elements((List<?>) o.get("shape"));
                outputDtypes[i] = str(o, "dtype");
                boolean quantized = !outputDtypes[i].equals("float32");
                outputScales[i] = quantized ? (float) num(o, "scale") : 1f;
                outputZeroPoints[i] = quantized ? (int) num(o, "zero_point") : 0;
            }
            Map<String, Object> det = obj(doc, "detection");
            postProcessingInModel = !det.containsKey("anchors");
            scoreThreshold = (float) num(det, "score_threshold");
            nmsIou = num(det, "nms_iou");
            maxDetections = (int) num(det, "max_detections");
            decodeScales = new double[4];
            if (!postProcessingInModel) {
                List<?> scales = (List<?>) det.get("scales");
                if (scales == null || scales.size() != 4) {
                    throw new IllegalArgumentException("model.json: detection.scales must hold four numbers");
                }
                for (int i = 0; i < 4; i++) {
                    decodeScales[i] = (Double) scales.get(i);
                }
            }
            outputDtype = outputDtypes[0];
            outputScale = outputScales[0];
            outputZeroPoint = outputZeroPoints[0];
        } else {
            Map<String, Object> out = obj(doc, "output");
            outputDtype = str(out, "dtype");
            outputScale = outputDtype.equals("float32") ? 1f : (float) num(out, "scale");
            outputZeroPoint = outputDtype.equals("float32") ? 0 : (int) num(out, "zero_point");
            outputNames = new String[] {"probabilities"};
            outputDtypes = new String[] {outputDtype};
            outputScales = new float[] {outputScale};
            outputZeroPoints = new int[] {outputZeroPoint};
            outputElements = new int[] {numClasses};
            postProcessingInModel = false;
            scoreThreshold = 0f;
            nmsIou = 0;
            maxDetections = 0;
            decodeScales = new double[4];
        }
        Map<String, Object> pre = obj(doc, "preprocessing");
        pixelScale = (float) num(pre, "scale");
        pixelOffset = (float) num(pre, "offset");
        Map<String, Object> resize = obj(pre, "resize");
        if (!"bilinear".equals(resize.get("method")) || !Boolean.FALSE.equals(resize.get("antialias"))) {
            throw new IllegalArgumentException("model.json: only bilinear resizing without antialiasing is implemented");
        }
        if (channels != 3 && channels != 1) {
            throw new IllegalArgumentException("model.json: 1 or 3 input channels expected; received " + channels);
        }
        for (String dtype : concat(inputDtype, outputDtypes)) {
            if (!dtype.equals("int8") && !dtype.equals("uint8") && !dtype.equals("int16") && !dtype.equals("float32")) {
                throw new IllegalArgumentException("model.json: unsupported dtype " + dtype);
            }
        }
    }

    /** The index of the output named {@code name}; an IllegalArgumentException when there is none. */
    public int output(String name) {
        for (int i = 0; i < outputNames.length; i++) {
            if (outputNames[i].equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("model.json: no output named " + name);
    }

    /** Bytes of output {@code i}: its elements times its dtype's size. */
    public int outputBytes(int i) {
        String dtype = outputDtypes[i];
        return outputElements[i] * (dtype.equals("float32") ? 4 : dtype.equals("int16") ? 2 : 1);
    }

    private static int elements(List<?> shape) {
        if (shape == null || shape.isEmpty()) {
            throw new IllegalArgumentException("model.json: every detector output needs its shape");
        }
        int n = 1;
        for (Object d : shape) {
            if (!(d instanceof Double) || (Double) d < 1) {
                throw new IllegalArgumentException("model.json: an output shape holds positive sizes; received " + shape);
            }
            n *= ((Double) d).intValue();
        }
        return n;
    }

    private static String[] concat(String first, String[] rest) {
        String[] all = new String[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }

    /** Parses model.json's text. */
    public static ModelSpec parse(String json) {
        Object doc = Json.parse(json);
        if (!(doc instanceof Map)) {
            throw new IllegalArgumentException("model.json: expected an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) doc;
        return new ModelSpec(map);
    }

    /** Bytes of the model's input tensor: NHWC, one byte per value for int8/uint8, two for int16 (int16x8 models),
     * four for float32 (little-endian). */
    public int inputBytes() {
        return height * width * channels * (inputDtype.equals("float32") ? 4 : inputDtype.equals("int16") ? 2 : 1);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> obj(Map<String, Object> m, String key) {
        Object v = m.get(key);
        if (!(v instanceof Map)) {
            throw new IllegalArgumentException("model.json: missing object '" + key + "'");
        }
        return (Map<String, Object>) v;
    }

    private static String str(Map<String, Object> m, String key) {
        Object v = m.get(key);
        if (!(v instanceof String)) {
            throw new IllegalArgumentException("model.json: missing string '" + key + "'");
        }
        return (String) v;
    }

    private static double num(Map<String, Object> m, String key) {
        Object v = m.get(key);
        if (!(v instanceof Double)) {
            throw new IllegalArgumentException("model.json: missing number '" + key + "'");
        }
        return (Double) v;
    }
}
