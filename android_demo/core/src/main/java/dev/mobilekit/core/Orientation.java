package dev.mobilekit.core;

/**
 * A photo's EXIF orientation, applied as a gallery shows the photo (what mobilekit's training and evaluation do).
 *
 * <p>Phones store a portrait photo as landscape pixels plus an EXIF tag (0x0112) saying how to turn them;
 * Android's {@code BitmapFactory} and Java's ImageIO ignore it. {@link #ofJpeg} reads the tag from a JPEG's APP1
 * segment (1 when there is none, or anything is malformed); {@link #apply} rotates or mirrors ARGB pixels to match.
 * Android-free: the app and the JVM parity tests call the same code.
 */
public final class Orientation {
    private Orientation() {
    }

    /** Row-major 0xAARRGGBB pixels and their size, as shown. */
    public static final class Pixels {
        public final int[] argb;
        public final int width;
        public final int height;

        public Pixels(int[] argb, int width, int height) {
            this.argb = argb;
            this.width = width;
            this.height = height;
        }
    }

    /** The EXIF orientation (1..8) of a JPEG file's bytes; 1 for no tag, another format, or a damaged segment. */
    public static int ofJpeg(byte[] b) {
        if (b.length < 4 || (b[0] & 0xFF) != 0xFF || (b[1] & 0xFF) != 0xD8) {
            return 1;
        }
        int at = 2;
        while (at + 4 <= b.length) {
            if ((b[at] & 0xFF) != 0xFF) {
                return 1;
            }
            int marker = b[at + 1] & 0xFF;
            if (marker == 0xDA || marker == 0xD9) {
                return 1; // the image data starts: EXIF always comes before it
            }
            int length = u16(b, at + 2, false);
            if (length < 2 || (long) at + 2 + length > b.length) {
                return 1;
            }
            if (marker == 0xE1 && length >= 16 && b[at + 4] == 'E' && b[at + 5] == 'x' && b[at + 6] == 'i'
                    && b[at + 7] == 'f' && b[at + 8] == 0 && b[at + 9] == 0) {
                return ofTiff(b, at + 10, at + 2 + length);
            }
            at += 2 + length;
        }
        return 1;
    }

    /** The orientation tag of IFD0 in the TIFF block b[start, end). */
    private static int ofTiff(byte[] b, int start, int end) {
        boolean little;
        if (b[start] == 'I' && b[start + 1] == 'I') {
            little = true;
        } else if (b[start] == 'M' && b[start + 1] == 'M') {
            little = false;
        } else {
            return 1;
        }
        long ifd = start + u32(b, start + 4, little);
        if (ifd + 2 > end) {
            return 1;
        }
        int entries = u16(b, (int) ifd, little);
        for (int i = 0; i < entries; i++) {
            long entry = ifd + 2 + 12L * i;
            if (entry + 12 > end) {
                return 1;
            }
            if (u16(b, (int) entry, little) == 0x0112) {
                int value = u16(b, (int) entry + 8, little);
                return value >= 1 && value <= 8 ? value : 1;
            }
        }
        return 1;
    }

    private static int u16(byte[] b, int at, boolean little) {
        int x = b[at] & 0xFF;
        int y = b[at + 1] & 0xFF;
        return little ? x | (y << 8) : (x << 8) | y;
    }

    private static long u32(byte[] b, int at, boolean little) {
        long hi = u16(b, little ? at + 2 : at, little);
        long lo = u16(b, little ? at : at + 2, little);
        return (hi << 16) | lo;
    }

    /**
     * The pixels as shown for {@code orientation}: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
     * clockwise, 7 transverse, 8 rotate 90 counter-clockwise (5-8 swap width and height); 1 or unknown: as stored.
     */
    public static Pixels apply(int[] argb, int width, int height, int orientation) {
        if (orientation < 2 || orientation > 8) {
            return new Pixels(argb, width, height);
        }
        boolean swap = orientation >= 5;
        int w = swap ? height : width;
        int h = swap ? width : height;
        int[] out = new int[w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int sx;
                int sy;
                switch (orientation) {
                    case 2: sx = width - 1 - x; sy = y; break;
                    case 3: sx = width - 1 - x; sy = height - 1 - y; break;
                    case 4: sx = x; sy = height - 1 - y; break;
                    case 5: sx = y; sy = x; break;
                    case 6: sx = y; sy = height - 1 - x; break;
                    case 7: sx = width - 1 - y; sy = height - 1 - x; break;
                    default: sx = width - 1 - y; sy = x; break; // 8
                }
                out[y * w + x] = argb[sy * width + sx];
            }
        }
        return new Pixels(out, w, h);
    }
}
