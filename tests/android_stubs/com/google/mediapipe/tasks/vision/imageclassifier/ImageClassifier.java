package com.google.mediapipe.tasks.vision.imageclassifier;

import com.google.mediapipe.framework.image.MPImage;
import com.google.mediapipe.tasks.core.BaseOptions;
import com.google.mediapipe.tasks.vision.core.RunningMode;

public final class ImageClassifier implements AutoCloseable {
    private ImageClassifier() {
    }

    public static ImageClassifier createFromOptions(android.content.Context context, ImageClassifierOptions options) {
        throw new UnsupportedOperationException("stub");
    }

    public ImageClassifierResult classify(MPImage image) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public void close() {
        throw new UnsupportedOperationException("stub");
    }

    public abstract static class ImageClassifierOptions {
        public static Builder builder() {
            throw new UnsupportedOperationException("stub");
        }

        public abstract static class Builder {
            public abstract Builder setBaseOptions(BaseOptions baseOptions);

            public abstract Builder setRunningMode(RunningMode runningMode);

            public abstract Builder setMaxResults(Integer maxResults);

            public abstract Builder setScoreThreshold(Float scoreThreshold);

            public final ImageClassifierOptions build() {
                throw new UnsupportedOperationException("stub");
            }
        }
    }
}
