// Plain Java, no android.* import: model.json, preprocessing and postprocessing, testable on any JVM.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}
