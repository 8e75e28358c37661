package android.graphics;

public class BitmapFactory {
    public static Bitmap decodeStream(java.io.InputStream is) {
        throw new RuntimeException("stub");
    }

    public static Bitmap decodeByteArray(byte[] data, int offset, int length) {
        throw new RuntimeException("stub");
    }
}
