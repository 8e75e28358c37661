package com.google.mediapipe.tasks.components.containers;

public abstract class ClassificationResult {
    public abstract java.util.List<Classifications> classifications();
}
