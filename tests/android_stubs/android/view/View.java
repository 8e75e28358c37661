package android.view;

public class View {
    public interface OnClickListener {
        void onClick(View v);
    }

    public View(android.content.Context context) {
        throw new RuntimeException("stub");
    }

    public void setOnClickListener(OnClickListener l) {
        throw new RuntimeException("stub");
    }
}
