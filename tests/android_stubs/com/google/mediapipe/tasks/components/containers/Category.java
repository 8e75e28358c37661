package com.google.mediapipe.tasks.components.containers;

public abstract class Category {
    public abstract float score();

    public abstract int index();

    public abstract String categoryName();

    public abstract String displayName();
}
