plugins {
    id("com.android.application")
}

android {
    namespace = "dev.mobilekit.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "dev.mobilekit.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    androidResources {
        noCompress += "tflite"  // the model is read whole from the APK
    }
}

dependencies {
    implementation(project(":core"))
    // LiteRT's Interpreter API (org.tensorflow.lite.Interpreter, XNNPACK on the CPU), pinned.
    implementation("com.google.ai.edge.litert:litert:1.4.1")
    // MediaPipe Tasks' ImageClassifier (MediaPipeClassifier): the same file read through its TFLite metadata, pinned.
    implementation("com.google.mediapipe:tasks-vision:0.10.29")
    implementation("androidx.activity:activity:1.9.3")
}
