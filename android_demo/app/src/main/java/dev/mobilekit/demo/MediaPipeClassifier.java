package dev.mobilekit.demo;

import android.content.Context;
import android.graphics.Bitmap;
import com.google.mediapipe.framework.image.BitmapImageBuilder;
import com.google.mediapipe.framework.image.MPImage;
import com.google.mediapipe.tasks.components.containers.Category;
import com.google.mediapipe.tasks.core.BaseOptions;
import com.google.mediapipe.tasks.vision.core.RunningMode;
import com.google.mediapipe.tasks.vision.imageclassifier.ImageClassifier;
import com.google.mediapipe.tasks.vision.imageclassifier.ImageClassifierResult;
import java.util.List;

/**
 * The same .tflite through MediaPipe Tasks' ImageClassifier instead of the kit's own core: no model.json needed,
 * because the file carries its TFLite metadata (class names, image size, normalisation) and takes uint8 pixels.
 *
 * <p>MediaPipe resizes the bitmap itself (its own bilinear sampling), so on a full-size photo the scores can differ
 * slightly from mobilekit's evaluation, which the core reproduces byte for byte; on an image already at the model's
 * size they are the same (tests/test_app_runtimes.py checks this with the Python API over the same C++ core).
 */
public final class MediaPipeClassifier implements AutoCloseable {
    private final ImageClassifier classifier;

    /** {@code modelAsset}: the .tflite's name in assets/ (model.json's "model"). */
    public MediaPipeClassifier(Context context, String modelAsset, int maxResults) {
        BaseOptions base = BaseOptions.builder().setModelAssetPath(modelAsset).build();
        ImageClassifier.ImageClassifierOptions options = ImageClassifier.ImageClassifierOptions.builder()
                .setBaseOptions(base)
                .setRunningMode(RunningMode.IMAGE)
                .setMaxResults(maxResults)
                .build();
        classifier = ImageClassifier.createFromOptions(context, options);
    }

    /** The best classes for an ARGB_8888 bitmap, best first: name (from labels.txt in the file) and score. */
    public List<Category> classify(Bitmap bitmap) {
        MPImage image = new BitmapImageBuilder(bitmap).build();
        ImageClassifierResult result = classifier.classify(image);
        return result.classificationResult().classifications().get(0).categories();
    }

    @Override
    public void close() {
        classifier.close();
    }
}
