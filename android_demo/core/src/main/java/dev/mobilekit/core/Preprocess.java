package dev.mobilekit.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

/**
 * ARGB pixels -> the model's input tensor bytes, exactly as mobilekit's evaluation computes them.
 *
 * <p>Per channel (R, G, B): TensorFlow's bilinear resize with half-pixel centres in float32, rounded half to
 * even and clamped to a uint8 pixel; then {@code float_input = pixel * scale + offset} and, for an int8/uint8
 * model, {@code q = clamp(rint(float_input / input_scale + zero_point))}, all in float32 like NumPy. The app
 * calls {@link #toInputBytes}; {@code main} does the same for image files on a JVM (the parity tests).
 */
public final class Preprocess {
    private Preprocess() {
    }

    /**
     * The input tensor for an image given as ARGB ints (Android's {@code Bitmap.getPixels}, Java's
     * {@code BufferedImage.getRGB} order: row-major, {@code 0xAARRGGBB}).
     */
    public static byte[] toInputBytes(ModelSpec spec, int[] argb, int width, int height) {
        if (argb.length != width * height || width < 1 || height < 1) {
            throw new IllegalArgumentException("pixels do not match " + width + "x" + height);
        }
        int[][] planes = new int[3][width * height];
        for (int i = 0; i < argb.length; i++) {
            planes[0][i] = (argb[i] >> 16) & 0xFF;
            planes[1][i] = (argb[i] >> 8) & 0xFF;
            planes[2][i] = argb[i] & 0xFF;
        }
        int[][] resized = new int[3][];
        for (int c = 0; c < 3; c++) {
            resized[c] = resizeBilinear(planes[c], width, height, spec.width, spec.height);
        }
        int n = spec.width * spec.height;
        boolean isFloat = spec.inputDtype.equals("float32");
        ByteBuffer out = ByteBuffer.allocate(spec.inputBytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < spec.channels; c++) {
                // One model channel: R, G, B in order; a 1-channel model takes R (grey images have R = G = B).
                float x = (float) resized[c][i] * spec.pixelScale + spec.pixelOffset;
                if (isFloat) {
                    out.putFloat(x);
                } else if (spec.inputDtype.equals("int16")) {
                    out.putShort((short) quantize(x, spec));
                } else {
                    out.put((byte) quantize(x, spec));
                }
            }
        }
        return out.array();
    }

    /** float32 value -> the int8/uint8/int16 input value, NumPy's way: rint(x / scale + zero_point), clamped. */
    public static int quantize(float x, ModelSpec spec) {
        float q = x / spec.inputScale + (float) spec.inputZeroPoint;
        float r = (float) Math.rint(q);
        boolean int16 = spec.inputDtype.equals("int16");
        int lo = int16 ? -32768 : spec.inputDtype.equals("int8") ? -128 : 0;
        int hi = int16 ? 32767 : spec.inputDtype.equals("int8") ? 127 : 255;
        return (int) Math.max(lo, Math.min(hi, r));
    }

    /**
     * One uint8 plane resized like {@code tf.image.resize(..., "bilinear")} (half-pixel centres, no antialias),
     * then rounded half to even and clamped to [0, 255].
     */
    public static int[] resizeBilinear(int[] src, int inW, int inH, int outW, int outH) {
        int[] y0 = new int[outH];
        int[] y1 = new int[outH];
        float[] dy = new float[outH];
        weights(inH, outH, y0, y1, dy);
        int[] x0 = new int[outW];
        int[] x1 = new int[outW];
        float[] dx = new float[outW];
        weights(inW, outW, x0, x1, dx);
        int[] dst = new int[outW * outH];
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                float tl = src[y0[y] * inW + x0[x]];
                float tr = src[y0[y] * inW + x1[x]];
                float bl = src[y1[y] * inW + x0[x]];
                float br = src[y1[y] * inW + x1[x]];
                float top = tl + (tr - tl) * dx[x];
                float bottom = bl + (br - bl) * dx[x];
                float value = top + (bottom - top) * dy[y];
                dst[y * outW + x] = (int) Math.max(0f, Math.min(255f, (float) Math.rint(value)));
            }
        }
        return dst;
    }

    /** Source rows/columns and weights: src = (dst + 0.5) * in / out - 0.5 in float32, edges clamped. */
    private static void weights(int in, int out, int[] lower, int[] upper, float[] lerp) {
        float scale = (float) in / (float) out;
        for (int i = 0; i < out; i++) {
            float src = ((float) i + 0.5f) * scale - 0.5f;
            float floor = (float) Math.floor(src);
            lower[i] = Math.max((int) floor, 0);
            upper[i] = Math.min((int) Math.ceil(src), in - 1);
            lerp[i] = src - floor;
        }
    }

    /**
     * {@code Preprocess MODEL_JSON IMAGE OUT_BIN [IMAGE OUT_BIN ...]}: writes each image's input tensor bytes
     * (NHWC, the model's dtype). Images are read with ImageIO (PNG, JPEG, BMP, GIF).
     */
    public static void main(String[] args) throws IOException {
        if (args.length < 3 || args.length % 2 != 1) {
            System.err.println("usage: Preprocess MODEL_JSON IMAGE OUT_BIN [IMAGE OUT_BIN ...]");
            System.exit(2);
        }
        ModelSpec spec = ModelSpec.parse(new String(Files.readAllBytes(new File(args[0]).toPath()),
                StandardCharsets.UTF_8));
        for (int i = 1; i < args.length; i += 2) {
            ImageFiles.Pixels image = ImageFiles.read(new File(args[i]));
            byte[] bytes = toInputBytes(spec, image.argb, image.width, image.height);
            File out = new File(args[i + 1]);
            File tmp = new File(out.getPath() + ".tmp");
            Files.write(tmp.toPath(), bytes);
            Files.move(tmp.toPath(), out.toPath(), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
    }
}
