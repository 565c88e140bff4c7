//! Reading the PNGs starflow (and headless Chromium) write.

use std::path::Path;

/// Width, height and RGB pixels of a PNG (an alpha channel is dropped).
pub fn decode_png(path: &Path) -> (usize, usize, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("image size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "an RGB picture ({:?})", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels).map(|c| [c[0], c[1], c[2]]).collect();
    (info.width as usize, info.height as usize, pixels)
}
