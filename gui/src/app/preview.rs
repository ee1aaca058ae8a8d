//! Shared pictures shown in the conversation, not only as a file card.
//!
//! A PNG, JPEG, GIF or WebP (GIF and WebP animated, within [`ANIM_BYTES`]) up to [`MAX`] is
//! decrypted into memory once downloaded (it never touches
//! the disk in the clear), decoded off the UI thread with `image`'s limits (a picture that
//! claims more pixels than [`MAX_SIDE`] a side, or more memory than [`MAX_ALLOC`], is
//! refused rather than allocated: a colleague's modified client may send a decompression
//! bomb), scaled down to at most twice the box it is drawn in, and kept as a texture. The
//! box has a fixed height, so a row's height does not change when its picture arrives. A
//! click opens it as large as the window allows ([`Viewer`]), decoded again for that size.

use eframe::egui;
use majlis_core::store::FileView;

/// The largest picture previewed; a larger one stays a card to download and save.
pub(super) const MAX: u64 = 16 * 1024 * 1024;
/// The box a picture is drawn in (it keeps its proportions inside).
pub(super) const WIDTH: f32 = 320.0;
pub(super) const HEIGHT: f32 = 180.0;
const MAX_SIDE: u32 = 16_384;
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// The most decoded bytes an animated GIF's frames may take (each scaled as a still picture
/// is): past it, only its first frame is shown. Bounds the memory a long or large animation
/// (or a colleague's modified client's GIF of 100 000 frames) can take.
const ANIM_BYTES: usize = 48 * 1024 * 1024;
/// The most frames an animation keeps.
const MAX_FRAMES: usize = 300;
/// The largest screen an animation may have (a little over 1920 × 1080): each of its frames
/// is decoded whole before it is scaled, so a larger one (a colleague's modified client's
/// 8 000 × 8 000 GIF of 300 blank frames is a few MB) would cost seconds of CPU a frame.
/// A larger GIF shows its first frame.
const MAX_ANIM_PIXELS: u64 = 2_100_000;

/// A decoded picture: its frames, each with how long it shows (ms; a still picture has one).
pub type Frames = Vec<(egui::ColorImage, u32)>;

/// Where a picture's preview stands.
pub(super) enum Thumb {
    /// Being read and decoded.
    Loading,
    Ready(Shown),
    /// Not a picture `image` can read (or refused by its limits): the card alone.
    Failed,
}

impl Thumb {
    /// Its textures, for bounding how many are kept.
    pub fn frames(&self) -> usize {
        match self {
            Thumb::Ready(shown) => shown.frames.len(),
            Thumb::Loading | Thumb::Failed => 0,
        }
    }
}

/// A picture's textures: one, or an animation's frames with how long each shows (ms).
pub(super) struct Shown {
    pub frames: Vec<(egui::TextureHandle, u32)>,
}

impl Shown {
    /// The frame to draw now. An animation asks for a repaint when its next frame is due,
    /// only while it is drawn: one scrolled out of sight costs nothing.
    pub fn now(&self, ctx: &egui::Context) -> &egui::TextureHandle {
        if self.frames.len() > 1 {
            let ms = (ctx.input(|i| i.time) * 1000.0) as u64;
            let (i, left) = frame_at(self.frames.iter().map(|f| f.1), ms);
            ctx.request_repaint_after(std::time::Duration::from_millis(left));
            return &self.frames[i].0;
        }
        &self.frames[0].0
    }
}

/// Which of frames lasting `delays` (ms) shows `ms` into a looping animation, and how long
/// until the next.
pub fn frame_at(delays: impl Iterator<Item = u32> + Clone, ms: u64) -> (usize, u64) {
    let cycle: u64 = delays.clone().map(u64::from).sum();
    let mut t = ms % cycle.max(1);
    for (i, d) in delays.enumerate() {
        if t < u64::from(d) {
            return (i, u64::from(d) - t);
        }
        t -= u64::from(d);
    }
    (0, 1)
}

/// Whether file `f` is drawn as a picture.
pub(super) fn previewed(f: &FileView) -> bool {
    matches!(
        f.mime.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    ) && f.size <= MAX
}

/// A picture opened from its preview, over the conversation.
pub(super) struct Viewer {
    pub message: majlis_core::MessageId,
    pub name: String,
    pub shown: Thumb,
}

/// The preview's size: twice the box (for high-density screens).
pub const THUMB: (u32, u32) = ((2.0 * WIDTH) as u32, (2.0 * HEIGHT) as u32);
/// The viewer's: a large screen's.
pub const LARGE: (u32, u32) = (2560, 1600);

/// Decode `bytes` (PNG, JPEG, GIF or WebP, by their content, not their name) into an image of at
/// most `(w, h)` (scaled down, never up, in its proportions), or say why not.
pub fn decode(bytes: &[u8], (w, h): (u32, u32)) -> Result<egui::ColorImage, String> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    // (`thumbnail` would enlarge a smaller one too.)
    let small = match img.width() > w || img.height() > h {
        true => img.thumbnail(w, h),
        false => img,
    };
    let size = [small.width() as usize, small.height() as usize];
    // Most pictures are opaque (photos, screenshots): their pixels need no premultiplying.
    Ok(match small.color().has_alpha() {
        true => egui::ColorImage::from_rgba_unmultiplied(size, small.to_rgba8().as_raw()),
        false => egui::ColorImage::from_rgb(size, small.to_rgb8().as_raw()),
    })
}

/// [`decode`], with every frame of an animated GIF or WebP (scaled alike, each with its
/// delay; delays of 10 ms or less show for 100 ms, as browsers do). An animation over
/// [`ANIM_BYTES`], [`MAX_FRAMES`] or [`MAX_ANIM_PIXELS`] shows its first frame only.
pub fn decode_frames(bytes: &[u8], (w, h): (u32, u32)) -> Result<Frames, String> {
    let still = || decode(bytes, (w, h)).map(|img| vec![(img, 0)]);
    let frames = match image::guess_format(bytes).ok() {
        Some(image::ImageFormat::Gif) => frames_of(
            image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
                .map_err(|e| e.to_string())?,
            (w, h),
        )?,
        Some(image::ImageFormat::WebP) => {
            let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes))
                .map_err(|e| e.to_string())?;
            match decoder.has_animation() {
                true => frames_of(decoder, (w, h))?,
                false => None,
            }
        }
        _ => None,
    };
    match frames {
        Some(frames) if frames.len() > 1 => Ok(frames),
        _ => still(),
    }
}

/// The frames `decoder` gives, scaled to fit `(w, h)`; `None` where the animation is over
/// the budget (then its first frame is shown still).
fn frames_of<'a, D>(mut decoder: D, (w, h): (u32, u32)) -> Result<Option<Frames>, String>
where
    D: image::ImageDecoder + image::AnimationDecoder<'a>,
{
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    decoder.set_limits(limits).map_err(|e| e.to_string())?;
    let (cw, ch) = decoder.dimensions();
    if u64::from(cw) * u64::from(ch) > MAX_ANIM_PIXELS {
        return Ok(None);
    }
    let (mut frames, mut total) = (Vec::new(), 0usize);
    for frame in decoder.into_frames() {
        let frame = frame.map_err(|e| e.to_string())?;
        let (n, d) = frame.delay().numer_denom_ms();
        let ms = match n / d.max(1) {
            0..=10 => 100,
            ms => ms,
        };
        let img = image::DynamicImage::ImageRgba8(frame.into_buffer());
        let small = match img.width() > w || img.height() > h {
            true => img.thumbnail(w, h),
            false => img,
        };
        total += small.width() as usize * small.height() as usize * 4;
        if total > ANIM_BYTES || frames.len() == MAX_FRAMES {
            return Ok(None);
        }
        let size = [small.width() as usize, small.height() as usize];
        let rgba = small.to_rgba8();
        frames.push((
            egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
            ms,
        ));
    }
    Ok(Some(frames))
}

/// The size a picture of `size` pixels is drawn at: within the box (and `room` wide),
/// never larger than it is.
pub(super) fn fitted(size: egui::Vec2, room: f32) -> egui::Vec2 {
    fit(size, egui::vec2(room.min(WIDTH), HEIGHT))
}

/// `size` scaled down (never up) to fit `max`, in its proportions.
pub(super) fn fit(size: egui::Vec2, max: egui::Vec2) -> egui::Vec2 {
    size * (max.x / size.x).min(max.y / size.y).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        encoded(w, h, image::ImageFormat::Png)
    }

    fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    /// Screenshots (PNG), photos (JPEG), GIFs and WebP pictures are
    /// read by their content: one shared under another type's name is drawn as what it is.
    #[test]
    fn pictures_of_each_kind_are_drawn() {
        use image::ImageFormat::*;
        for format in [Png, Jpeg, Gif, WebP] {
            let shown = decode(&encoded(64, 32, format), THUMB)
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(shown.size, [64, 32], "{format:?}");
            let [r, g, b, _] = shown.pixels[0].to_array();
            assert!(
                r.abs_diff(200) < 8 && g.abs_diff(30) < 8 && b.abs_diff(30) < 8,
                "{format:?}: {:?}",
                shown.pixels[0]
            );
        }
        for format in [Png, Jpeg, Gif, WebP] {
            let name = format.extensions_str()[0];
            let file = FileView {
                name: format!("x.{name}"),
                mime: majlis_core::files::guess_mime(&format!("x.{name}")).into(),
                size: 10,
                blob: majlis_core::files::BlobId([0; 32]),
            };
            assert!(previewed(&file), "{name}");
        }
    }

    /// A GIF of `n` frames of `w` × `h`, each a different shade, 50 ms each (the first 5 ms).
    fn animated(n: usize, w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.set_repeat(image::codecs::gif::Repeat::Infinite)
                .unwrap();
            let frames = (0..n).map(|i| {
                let shade = (i * 40 % 256) as u8;
                let img = image::RgbaImage::from_pixel(w, h, image::Rgba([shade, 30, 30, 255]));
                let ms = if i == 0 { 5 } else { 50 };
                image::Frame::from_parts(img, 0, 0, image::Delay::from_numer_denom_ms(ms, 1))
            });
            enc.encode_frames(frames).unwrap();
        }
        out
    }

    /// An animated GIF shows each frame for its time and loops; a still GIF is one frame;
    /// one whose frames would take more than the budget shows its first frame only.
    #[test]
    fn an_animated_gif_is_drawn_frame_by_frame_within_a_budget() {
        let frames = decode_frames(&animated(3, 64, 32), THUMB).unwrap();
        assert_eq!(frames.len(), 3);
        let delays: Vec<u32> = frames.iter().map(|f| f.1).collect();
        assert_eq!(delays, [100, 50, 50], "a 5 ms frame shows for 100 ms");
        assert_ne!(frames[0].0.pixels[0], frames[1].0.pixels[0]);
        assert_eq!(frames[1].0.size, [64, 32]);
        let at = |ms| frame_at(delays.iter().copied(), ms);
        assert_eq!(at(0), (0, 100));
        assert_eq!(at(120), (1, 30));
        assert_eq!(at(199), (2, 1));
        assert_eq!(at(200 + 150), (2, 50), "it loops");
        let still = decode_frames(&encoded(64, 32, image::ImageFormat::Gif), THUMB).unwrap();
        assert_eq!(still.len(), 1);
        // 60 frames of 640 × 360 (scaled to the box: 640 × 360 at twice its size) would
        // take 55 MB.
        let long = decode_frames(&animated(60, 640, 360), THUMB).unwrap();
        assert_eq!(long.len(), 1, "over the budget: the first frame");
        assert_eq!(long[0].0.size, [640, 360]);
        // A screen of 2 000 × 1 100 (2.2 million pixels) is decoded as a still picture.
        let wide = decode_frames(&animated(2, 2000, 1100), LARGE).unwrap();
        assert_eq!(wide.len(), 1, "too large a screen to animate");
        assert_eq!(decode_frames(&png(40, 20), THUMB).unwrap().len(), 1);
    }

    /// An animated WebP of `n` frames of `w` × `h` (each a different shade, 80 ms), put
    /// together as the WebP container says (VP8X with the animation flag, ANIM, one ANMF
    /// per frame) around still frames from `image`'s own lossless encoder.
    fn animated_webp(n: usize, w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, tag: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(tag);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(0);
            }
        }
        let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
        let mut body = Vec::new();
        let mut vp8x = vec![0x02, 0, 0, 0]; // animation
        vp8x.extend(u24(w - 1));
        vp8x.extend(u24(h - 1));
        chunk(&mut body, b"VP8X", &vp8x);
        chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
        for i in 0..n {
            let shade = (i * 40 % 256) as u8;
            let img = image::RgbImage::from_pixel(w, h, image::Rgb([shade, 30, 30]));
            let mut still = Vec::new();
            image::DynamicImage::ImageRgb8(img)
                .write_to(
                    &mut std::io::Cursor::new(&mut still),
                    image::ImageFormat::WebP,
                )
                .unwrap();
            // RIFF, size, WEBP: the frame's own chunk (VP8L) follows.
            let mut anmf = [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(80)].concat();
            anmf.push(0);
            anmf.extend_from_slice(&still[12..]);
            chunk(&mut body, b"ANMF", &anmf);
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend(body);
        out
    }

    /// An animated WebP moves as a GIF does; a still one is one frame.
    #[test]
    fn an_animated_webp_is_drawn_frame_by_frame() {
        let frames = decode_frames(&animated_webp(3, 64, 32), THUMB).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [80, 80, 80]);
        assert_ne!(frames[0].0.pixels[0], frames[1].0.pixels[0]);
        assert_eq!(frames[2].0.size, [64, 32]);
        let still = decode_frames(&encoded(64, 32, image::ImageFormat::WebP), THUMB).unwrap();
        assert_eq!(still.len(), 1);
        let long = decode_frames(&animated_webp(60, 640, 360), THUMB).unwrap();
        assert_eq!(long.len(), 1, "over the budget: the first frame");
    }

    /// A GIF whose screen claims 65 535 × 65 535 pixels is refused by the limits too.
    #[test]
    fn a_gif_claiming_too_many_pixels_is_refused() {
        let mut bomb = encoded(1, 1, image::ImageFormat::Gif);
        bomb[6..10].copy_from_slice(&[0xff; 4]);
        let why = decode(&bomb, LARGE).unwrap_err();
        assert!(why.to_lowercase().contains("limit"), "{why}");
        let why = decode_frames(&bomb, LARGE).unwrap_err();
        assert!(why.to_lowercase().contains("limit"), "{why}");
    }

    #[test]
    fn a_picture_is_scaled_into_the_box_and_anything_else_is_refused() {
        let big = decode(&png(1600, 400), THUMB).unwrap();
        assert_eq!(
            big.size,
            [640, 160],
            "proportions kept, at most twice the box"
        );
        assert_eq!(decode(&png(1600, 400), LARGE).unwrap().size, [1600, 400]);
        let small = decode(&png(40, 20), THUMB).unwrap();
        assert_eq!(small.size, [40, 20], "never enlarged");
        assert_eq!(small.pixels[0], egui::Color32::from_rgb(200, 30, 30));
        assert!(decode(b"%PDF-1.7 not a picture", THUMB).is_err());
        let mut cut = png(40, 20);
        cut.truncate(cut.len() / 2);
        assert!(decode(&cut, THUMB).is_err());
    }

    /// A PNG whose header claims 100 000 × 100 000 pixels (40 GB decoded) is refused by
    /// the limits before anything that size is allocated.
    #[test]
    fn a_picture_claiming_too_many_pixels_is_refused() {
        let mut bomb = png(1, 1);
        // IHDR's width and height, then its CRC over the chunk type and data.
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let why = decode(&bomb, LARGE).unwrap_err();
        assert!(why.to_lowercase().contains("limit"), "{why}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_picture_fits_its_box_and_the_room_there_is() {
        let f = |w, h, room| fitted(egui::vec2(w, h), room);
        assert_eq!(f(640.0, 160.0, 800.0), egui::vec2(320.0, 80.0));
        assert_eq!(f(100.0, 400.0, 800.0), egui::vec2(45.0, 180.0));
        assert_eq!(f(640.0, 160.0, 160.0), egui::vec2(160.0, 40.0));
        assert_eq!(f(40.0, 20.0, 800.0), egui::vec2(40.0, 20.0));
    }
}
