package org.tensorflow.lite;

public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options() {
            throw new RuntimeException("stub");
        }

        public Options setNumThreads(int numThreads) {
            throw new RuntimeException("stub");
        }

        public Options setUseXNNPACK(boolean useXNNPACK) {
            throw new RuntimeException("stub");
        }
    }

    public Interpreter(java.nio.ByteBuffer byteBuffer, Options options) {
        throw new RuntimeException("stub");
    }

    public void run(Object input, Object output) {
        throw new RuntimeException("stub");
    }

    public void runForMultipleInputsOutputs(Object[] inputs, java.util.Map<Integer, Object> outputs) {
        throw new RuntimeException("stub");
    }

    @Override
    public void close() {
        throw new RuntimeException("stub");
    }
}
