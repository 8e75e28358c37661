package com.google.mediapipe.framework.image;

public class MPImage implements java.io.Closeable {
    @Override
    public void close() {
        throw new UnsupportedOperationException("stub");
    }
}
