package com.google.mediapipe.tasks.vision.imageclassifier;

public abstract class ImageClassifierResult {
    public abstract com.google.mediapipe.tasks.components.containers.ClassificationResult classificationResult();

    public abstract long timestampMs();
}
