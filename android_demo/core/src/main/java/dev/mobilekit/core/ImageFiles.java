package dev.mobilekit.core;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import javax.imageio.ImageIO;

/**
 * Image files -> ARGB pixels on a JVM (ImageIO), a JPEG's EXIF orientation applied ({@link Orientation}) as
 * mobilekit's training does. Android apps use Bitmap.getPixels and the same Orientation instead; nothing here runs
 * there.
 */
public final class ImageFiles {
    private ImageFiles() {
    }

    /** Row-major 0xAARRGGBB pixels and the image's size. */
    public static final class Pixels {
        public final int[] argb;
        public final int width;
        public final int height;

        Pixels(int[] argb, int width, int height) {
            this.argb = argb;
            this.width = width;
            this.height = height;
        }
    }

    public static Pixels read(File file) throws IOException {
        byte[] content = Files.readAllBytes(file.toPath());
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(content));
        if (image == null) {
            throw new IOException("not a readable image: " + file);
        }
        int w = image.getWidth();
        int h = image.getHeight();
        Orientation.Pixels shown = Orientation.apply(image.getRGB(0, 0, w, h, null, 0, w), w, h,
                Orientation.ofJpeg(content));
        return new Pixels(shown.argb, shown.width, shown.height);
    }
}
