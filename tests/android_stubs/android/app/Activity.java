package android.app;

public class Activity extends android.content.Context {
    protected void onCreate(android.os.Bundle savedInstanceState) {
        throw new RuntimeException("stub");
    }

    protected void onDestroy() {
        throw new RuntimeException("stub");
    }

    public void setContentView(android.view.View view) {
        throw new RuntimeException("stub");
    }

    public final void runOnUiThread(Runnable action) {
        throw new RuntimeException("stub");
    }

    @Override
    public android.content.res.AssetManager getAssets() {
        throw new RuntimeException("stub");
    }

    @Override
    public android.content.ContentResolver getContentResolver() {
        throw new RuntimeException("stub");
    }
}
