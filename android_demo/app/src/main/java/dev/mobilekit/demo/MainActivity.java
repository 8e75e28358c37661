package dev.mobilekit.demo;

import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.graphics.Canvas;
import android.graphics.Color;
import android.graphics.Paint;
import android.net.Uri;
import android.os.Bundle;
import android.widget.Button;
import android.widget.CheckBox;
import android.widget.ImageView;
import android.widget.LinearLayout;
import android.widget.TextView;
import androidx.activity.ComponentActivity;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import com.google.mediapipe.tasks.components.containers.Category;
import dev.mobilekit.core.Detections;
import dev.mobilekit.core.ModelSpec;
import dev.mobilekit.core.Orientation;
import dev.mobilekit.core.Postprocess;
import dev.mobilekit.core.Preprocess;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.tensorflow.lite.Interpreter;

/**
 * Pick an image from the gallery; classify it with the model `mobilekit export android` put in assets/, or, with a
 * detector's, draw its boxes ({@link Detections}: the post-processing op's outputs, or a raw-outputs file decoded
 * against assets/anchors.txt).
 *
 * <p>Every constant (input size, dtype, quantisation, preprocessing, labels) comes from assets/model.json through
 * the Android-free core ({@link ModelSpec}, {@link Preprocess}, {@link Postprocess}), the same code the JVM tests
 * prove byte-equal to mobilekit's evaluation. Options: XNNPACK on/off and 1/2/4 threads, or the same file through
 * MediaPipe Tasks' ImageClassifier ({@link MediaPipeClassifier}: names and preprocessing from the file's metadata).
 */
public class MainActivity extends ComponentActivity {
    private static final int[] THREADS = {1, 2, 4};
    private static final int RUNS = 10;  // timed inferences per image, after one warm-up

    private ModelSpec spec;
    private List<String> labels;
    private float[][] anchors;  // a raw-outputs detector's, else null
    private ByteBuffer model;
    private Interpreter interpreter;
    private int threadChoice = 0;
    private CheckBox xnnpack;
    private CheckBox mediapipe;
    private MediaPipeClassifier mediapipeClassifier;
    private Button threads;
    private ImageView preview;
    private TextView result;
    private ActivityResultLauncher<String> pick;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        LinearLayout layout = new LinearLayout(this);
        layout.setOrientation(LinearLayout.VERTICAL);
        Button choose = new Button(this);
        choose.setText("Pick an image");
        xnnpack = new CheckBox(this);
        xnnpack.setText("XNNPACK");
        xnnpack.setChecked(true);
        threads = new Button(this);
        mediapipe = new CheckBox(this);
        mediapipe.setText("MediaPipe Tasks (the file's own metadata)");
        preview = new ImageView(this);
        result = new TextView(this);
        layout.addView(choose);
        layout.addView(xnnpack);
        layout.addView(threads);
        layout.addView(mediapipe);
        layout.addView(preview);
        layout.addView(result);
        setContentView(layout);

        pick = registerForActivityResult(new ActivityResultContracts.GetContent(), this::classify);
        choose.setOnClickListener(v -> pick.launch("image/*"));
        threads.setOnClickListener(v -> {
            threadChoice = (threadChoice + 1) % THREADS.length;
            showThreads();
            closeInterpreter();
        });
        xnnpack.setOnClickListener(v -> closeInterpreter());
        showThreads();
        try {
            loadModel();
            result.setText(String.format(Locale.US, "%s: input %dx%dx%d %s, %d classes (%s). Pick an image.",
                    spec.model, spec.width, spec.height, spec.channels, spec.inputDtype, spec.numClasses, spec.task));
        } catch (IOException | RuntimeException e) {
            result.setText("No model: run `mobilekit export android build/<arch>` first (" + e.getMessage() + ")");
        }
    }

    private void showThreads() {
        threads.setText("Threads: " + THREADS[threadChoice]);
    }

    private void loadModel() throws IOException {
        spec = ModelSpec.parse(new String(readAsset("model.json"), StandardCharsets.UTF_8));
        byte[] bytes = readAsset(spec.model);
        String sha = sha256(bytes);
        if (!sha.equals(spec.sha256)) {
            throw new IOException(spec.model + " does not match model.json's sha256");
        }
        model = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
        model.put(bytes);
        model.rewind();
        labels = new ArrayList<>(Arrays.asList(
                new String(readAsset(spec.labels), StandardCharsets.UTF_8).split("\n")));
        if (labels.size() != spec.numClasses) {
            throw new IOException(spec.labels + " has " + labels.size() + " lines for " + spec.numClasses + " classes");
        }
        if (spec.task.equals("detection") && !spec.postProcessingInModel) {
            anchors = Detections.readAnchors(new String(readAsset("anchors.txt"), StandardCharsets.UTF_8));
        }
    }

    private Interpreter interpreter() {
        if (interpreter == null) {
            Interpreter.Options options = new Interpreter.Options()
                    .setNumThreads(THREADS[threadChoice])
                    .setUseXNNPACK(xnnpack.isChecked());
            interpreter = new Interpreter(model, options);
        }
        return interpreter;
    }

    private void closeInterpreter() {
        if (interpreter != null) {
            interpreter.close();
            interpreter = null;
        }
    }

    private void classify(Uri uri) {
        if (uri == null || spec == null) {
            return;
        }
        byte[] content;
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            content = readAll(in);
        } catch (IOException e) {
            result.setText("Could not read the image: " + e.getMessage());
            return;
        }
        Bitmap bitmap = BitmapFactory.decodeByteArray(content, 0, content.length);
        if (bitmap == null) {
            result.setText("Not an image the phone can decode");
            return;
        }
        preview.setImageBitmap(bitmap);
        if (mediapipe.isChecked() && spec.task.equals("detection")) {
            result.setText("This demo runs detectors in LiteRT only (MediaPipe's ObjectDetector reads the same file)");
            return;
        }
        if (mediapipe.isChecked()) {
            classifyWithMediaPipe(bitmap);
            return;
        }
        int w = bitmap.getWidth();
        int h = bitmap.getHeight();
        int[] argb = new int[w * h];
        bitmap.getPixels(argb, 0, w, 0, 0, w, h);
        // The photo as the gallery shows it (EXIF orientation), as mobilekit trained and evaluated the model.
        Orientation.Pixels shown = Orientation.apply(argb, w, h, Orientation.ofJpeg(content));
        byte[] inputBytes = Preprocess.toInputBytes(spec, shown.argb, shown.width, shown.height);
        ByteBuffer input = ByteBuffer.allocateDirect(inputBytes.length).order(ByteOrder.nativeOrder());
        input.put(inputBytes);
        if (spec.task.equals("detection")) {
            detect(input, shown);
            return;
        }
        int outBytes = spec.numClasses * (spec.outputDtype.equals("float32") ? 4 : spec.outputDtype.equals("int16") ? 2 : 1);
        ByteBuffer output = ByteBuffer.allocateDirect(outBytes).order(ByteOrder.nativeOrder());
        Interpreter it = interpreter();
        double[] ms = new double[RUNS];
        for (int run = -1; run < RUNS; run++) {
            input.rewind();
            output.rewind();
            long t0 = System.nanoTime();
            it.run(input, output);
            if (run >= 0) {
                ms[run] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        byte[] out = new byte[outBytes];
        output.rewind();
        output.get(out);
        StringBuilder text = new StringBuilder();
        for (Postprocess.Ranked r : Postprocess.topK(spec, out, labels, 3)) {
            text.append(String.format(Locale.US, "%s  %.1f%%%n", r.label, 100 * r.probability));
        }
        text.append(String.format(Locale.US, "median %.2f ms per frame (%d runs, %d thread(s), XNNPACK %s)",
                ms[RUNS / 2], RUNS, THREADS[threadChoice], xnnpack.isChecked() ? "on" : "off"));
        result.setText(text.toString());
    }

    /** A detector's outputs (every one model.json lists) -> boxes drawn on the photo as shown, and their list. */
    private void detect(ByteBuffer input, Orientation.Pixels shown) {
        int n = spec.outputNames.length;
        ByteBuffer[] buffers = new ByteBuffer[n];
        Map<Integer, Object> outputs = new HashMap<>();
        for (int i = 0; i < n; i++) {
            buffers[i] = ByteBuffer.allocateDirect(spec.outputBytes(i)).order(ByteOrder.nativeOrder());
            outputs.put(i, buffers[i]);
        }
        Interpreter it = interpreter();
        double[] ms = new double[RUNS];
        for (int run = -1; run < RUNS; run++) {
            input.rewind();
            for (ByteBuffer b : buffers) {
                b.rewind();
            }
            long t0 = System.nanoTime();
            it.runForMultipleInputsOutputs(new Object[] {input}, outputs);
            if (run >= 0) {
                ms[run] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        byte[][] out = new byte[n][];
        for (int i = 0; i < n; i++) {
            out[i] = new byte[spec.outputBytes(i)];
            buffers[i].rewind();
            buffers[i].get(out[i]);
        }
        List<Detections.Box> boxes = spec.postProcessingInModel
                ? Detections.fromPostProcess(spec, out, labels, shown.width, shown.height)
                : Detections.fromRaw(spec, out, anchors, labels, shown.width, shown.height);
        Bitmap drawn = Bitmap.createBitmap(shown.argb, shown.width, shown.height, Bitmap.Config.ARGB_8888)
                .copy(Bitmap.Config.ARGB_8888, true);
        Canvas canvas = new Canvas(drawn);
        Paint paint = new Paint();
        paint.setColor(Color.RED);
        paint.setStrokeWidth(Math.max(2f, shown.width / 200f));
        paint.setTextSize(Math.max(12f, shown.width / 30f));
        StringBuilder text = new StringBuilder();
        int drawnCount = 0;
        for (Detections.Box b : boxes) {
            if (b.score < 0.3f) {  // the file keeps every box above its NMS threshold; the demo draws the likely ones
                continue;
            }
            paint.setStyle(Paint.Style.STROKE);
            canvas.drawRect((float) b.left, (float) b.top, (float) b.right, (float) b.bottom, paint);
            paint.setStyle(Paint.Style.FILL);
            canvas.drawText(b.label, (float) b.left, (float) b.top, paint);
            drawnCount++;
            text.append(String.format(Locale.US, "%s  %.1f%%  (%.0f, %.0f)-(%.0f, %.0f)%n", b.label, 100 * b.score,
                    b.left, b.top, b.right, b.bottom));
        }
        preview.setImageBitmap(drawn);
        text.append(String.format(Locale.US, "%d detections above 30%% of %d; median %.2f ms per frame (%d runs, "
                + "%d thread(s), XNNPACK %s)", drawnCount, boxes.size(), ms[RUNS / 2],
                RUNS, THREADS[threadChoice], xnnpack.isChecked() ? "on" : "off"));
        result.setText(text.toString());
    }

    /** The same file in MediaPipe Tasks: it resizes the bitmap itself; class names come from the file. */
    private void classifyWithMediaPipe(Bitmap bitmap) {
        if (mediapipeClassifier == null) {
            mediapipeClassifier = new MediaPipeClassifier(this, spec.model, 3);
        }
        List<Category> best = null;
        double[] ms = new double[RUNS];
        for (int run = -1; run < RUNS; run++) {
            long t0 = System.nanoTime();
            best = mediapipeClassifier.classify(bitmap);
            if (run >= 0) {
                ms[run] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        StringBuilder text = new StringBuilder();
        for (Category c : best) {
            text.append(String.format(Locale.US, "%s  %.1f%%%n", c.categoryName(), 100 * c.score()));
        }
        text.append(String.format(Locale.US, "median %.2f ms per frame (%d runs, MediaPipe Tasks, resize included)",
                ms[RUNS / 2], RUNS));
        result.setText(text.toString());
    }

    private byte[] readAsset(String name) throws IOException {
        try (InputStream in = getAssets().open(name)) {
            return readAll(in);
        }
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        for (int n; (n = in.read(buf)) > 0; ) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    private static String sha256(byte[] bytes) {
        try {
            StringBuilder hex = new StringBuilder();
            for (byte b : MessageDigest.getInstance("SHA-256").digest(bytes)) {
                hex.append(String.format("%02x", b));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    protected void onDestroy() {
        closeInterpreter();
        if (mediapipeClassifier != null) {
            mediapipeClassifier.close();
        }
        super.onDestroy();
    }
}
