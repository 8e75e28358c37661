package android.widget;

public abstract class CompoundButton extends Button {
    public CompoundButton(android.content.Context context) {
        super(context);
    }

    public boolean isChecked() {
        throw new RuntimeException("stub");
    }

    public void setChecked(boolean checked) {
        throw new RuntimeException("stub");
    }
}
