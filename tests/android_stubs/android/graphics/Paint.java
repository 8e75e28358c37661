package android.graphics;

public class Paint {
    public enum Style {
        FILL, STROKE, FILL_AND_STROKE
    }

    public Paint() {
        throw new RuntimeException("stub");
    }

    public void setColor(int color) {
        throw new RuntimeException("stub");
    }

    public void setStyle(Style style) {
        throw new RuntimeException("stub");
    }

    public void setStrokeWidth(float width) {
        throw new RuntimeException("stub");
    }

    public void setTextSize(float textSize) {
        throw new RuntimeException("stub");
    }
}
