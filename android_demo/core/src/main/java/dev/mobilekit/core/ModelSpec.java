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
        Map<String, Object> out = obj(doc, "output");
        outputDtype = str(out, "dtype");
        outputScale = outputDtype.equals("float32") ? 1f : (float) num(out, "scale");
        outputZeroPoint = outputDtype.equals("float32") ? 0 : (int) num(out, "zero_point");
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
        for (String dtype : new String[] {inputDtype, outputDtype}) {
            if (!dtype.equals("int8") && !dtype.equals("uint8") && !dtype.equals("int16") && !dtype.equals("float32")) {
                throw new IllegalArgumentException("model.json: unsupported dtype " + dtype);
            }
        }
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
