//! The calls into libvpx. Every `unsafe` block says why it holds; the
//! invariants they lean on are the same throughout:
//!
//! - a context is zeroed, initialised once by `vpx_codec_*_init_ver`, used
//!   only through `&mut self`, and destroyed once in `Drop`;
//! - it is boxed, so the address libvpx was given never moves;
//! - pointers libvpx hands back (packets, images) are read before the next
//!   call on the same context, which is when libvpx may reuse them.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys::vp8e_enc_control_id::VP8E_SET_CPUUSED;
use vpx_sys::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT;
use vpx_sys::{
    VPX_CODEC_OK, VPX_DECODER_ABI_VERSION, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF,
    VPX_ENCODER_ABI_VERSION, VPX_ERROR_RESILIENT_DEFAULT, VPX_FRAME_IS_KEY, vpx_codec_ctx_t,
    vpx_codec_dec_cfg_t, vpx_codec_enc_cfg_t, vpx_codec_err_t, vpx_codec_iface_t, vpx_codec_iter_t,
    vpx_image_t, vpx_img_fmt, vpx_kf_mode, vpx_rc_mode,
};

use super::{EncodedFrame, EncoderConfig, Luma, Vpx, VpxError};

/// libvpx's real-time speed settings: VP8 takes -16..16 (higher is
/// faster), VP9 0..9 in real-time mode. What browsers use at small sizes.
const VP8_SPEED: c_int = 8;
const VP9_SPEED: c_int = 8;

pub(crate) fn version() -> String {
    // SAFETY: libvpx returns a static, NUL-terminated string.
    unsafe { CStr::from_ptr(vpx_sys::vpx_codec_version_str()) }
        .to_string_lossy()
        .into_owned()
}

/// A libvpx context that is destroyed when dropped.
struct Context {
    codec: Vpx,
    raw: Box<vpx_codec_ctx_t>,
}

// SAFETY: libvpx contexts hold no thread-affine state; ours is only ever
// used through `&mut`, so moving it to another thread is sound.
unsafe impl Send for Context {}

impl Context {
    fn zeroed(codec: Vpx) -> Self {
        // SAFETY: a zeroed `vpx_codec_ctx_t` is what libvpx's init calls
        // expect (all-null pointers, no error).
        let raw = Box::new(unsafe { std::mem::zeroed::<vpx_codec_ctx_t>() });
        Context { codec, raw }
    }

    fn ptr(&mut self) -> *mut vpx_codec_ctx_t {
        &mut *self.raw
    }

    /// Turns a libvpx status into our error, with the context's detail.
    fn check(&mut self, operation: &'static str, status: vpx_codec_err_t) -> Result<(), VpxError> {
        if status == VPX_CODEC_OK {
            return Ok(());
        }
        // SAFETY: both return static or context-owned NUL-terminated
        // strings (or null for the detail), valid until the next call.
        let message = unsafe {
            let text = CStr::from_ptr(vpx_sys::vpx_codec_err_to_string(status));
            let detail = vpx_sys::vpx_codec_error_detail(self.ptr());
            match detail.is_null() {
                true => text.to_string_lossy().into_owned(),
                false => format!(
                    "{} ({})",
                    text.to_string_lossy(),
                    CStr::from_ptr(detail).to_string_lossy()
                ),
            }
        };
        Err(VpxError::Codec {
            codec: self.codec.name(),
            operation,
            message,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.raw.iface.is_null() {
            return; // never initialised
        }
        // SAFETY: initialised once, destroyed once, here.
        unsafe { vpx_sys::vpx_codec_destroy(self.ptr()) };
    }
}

fn encoder_iface(codec: Vpx) -> *mut vpx_codec_iface_t {
    // SAFETY: these return pointers to libvpx's static interface tables.
    unsafe {
        match codec {
            Vpx::Vp8 => vpx_sys::vpx_codec_vp8_cx(),
            Vpx::Vp9 => vpx_sys::vpx_codec_vp9_cx(),
        }
    }
}

fn decoder_iface(codec: Vpx) -> *mut vpx_codec_iface_t {
    // SAFETY: as above.
    unsafe {
        match codec {
            Vpx::Vp8 => vpx_sys::vpx_codec_vp8_dx(),
            Vpx::Vp9 => vpx_sys::vpx_codec_vp9_dx(),
        }
    }
}

/// A real-time VP8 or VP9 encoder of I420 pictures.
pub struct Encoder {
    context: Context,
    config: EncoderConfig,
    frames: u64,
    keyframe_due: bool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("codec", &self.context.codec)
            .field("config", &self.config)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    pub fn new(codec: Vpx, config: EncoderConfig) -> Result<Self, VpxError> {
        let iface = encoder_iface(codec);
        let mut context = Context::zeroed(codec);
        // Not zeroed: some of its enums have no zero. libvpx writes all of it.
        let mut cfg = std::mem::MaybeUninit::<vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: `iface` is a static table; `cfg` is writable memory of
        // the struct's size, which libvpx fills in whole on success.
        let status = unsafe { vpx_sys::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
        context.check("default configuration", status)?;
        // SAFETY: filled in by the successful call above.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_timebase.num = 1;
        cfg.g_timebase.den = config.fps.max(1) as c_int;
        cfg.g_threads = 1;
        // One pass, no lookahead: a frame comes out as soon as it goes in.
        cfg.g_lag_in_frames = 0;
        // Every frame is coded: receivers count them, a skipped one is loss.
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_resize_allowed = 0;
        cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 52;
        cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
        // Keyframes come when we force them: on the interval and on request.
        cfg.kf_mode = vpx_kf_mode::VPX_KF_DISABLED;
        // SAFETY: a zeroed context, a static interface, a filled-in config;
        // libvpx copies what it keeps of `cfg`.
        let status = unsafe {
            vpx_sys::vpx_codec_enc_init_ver(
                context.ptr(),
                iface,
                &cfg,
                0,
                VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        context.check("initialisation", status)?;
        let speed = match codec {
            Vpx::Vp8 => VP8_SPEED,
            Vpx::Vp9 => VP9_SPEED,
        };
        // SAFETY: an initialised encoder; CPUUSED takes one int.
        let status =
            unsafe { vpx_sys::vpx_codec_control_(context.ptr(), VP8E_SET_CPUUSED as c_int, speed) };
        context.check("speed setting", status)?;
        Ok(Encoder {
            context,
            config,
            frames: 0,
            // The first frame a receiver sees must be decodable on its own.
            keyframe_due: true,
        })
    }

    /// The next frame will be a keyframe: the answer to a PLI or FIR.
    pub fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    /// Encodes one I420 picture (planes with strides `width` and
    /// `width / 2`).
    pub fn encode(&mut self, y: &[u8], u: &[u8], v: &[u8]) -> Result<EncodedFrame, VpxError> {
        let (width, height) = (self.config.width, self.config.height);
        let luma = width as usize * height as usize;
        let chroma = luma / 4;
        if y.len() < luma || u.len() < chroma || v.len() < chroma {
            return Err(VpxError::PictureSize {
                codec: self.context.codec.name(),
                width,
                height,
                got: y.len() + u.len() + v.len(),
            });
        }
        let interval = u64::from(self.config.keyframe_interval);
        let periodic = interval > 0 && self.frames.is_multiple_of(interval);
        let force = std::mem::take(&mut self.keyframe_due) || periodic;
        // SAFETY: a zeroed image is what `vpx_img_wrap` fills in.
        let mut image = unsafe { std::mem::zeroed::<vpx_image_t>() };
        // SAFETY: wraps (does not copy or free) the luma plane, whose size
        // was checked above; the chroma planes are pointed at below.
        let wrapped = unsafe {
            vpx_sys::vpx_img_wrap(
                &mut image,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                width as c_uint,
                height as c_uint,
                1,
                y.as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(VpxError::Codec {
                codec: self.context.codec.name(),
                operation: "wrapping the picture",
                message: "vpx_img_wrap refused the size".into(),
            });
        }
        // libvpx reads the input and never writes it.
        image.planes[1] = u.as_ptr().cast_mut();
        image.planes[2] = v.as_ptr().cast_mut();
        image.stride[0] = width as c_int;
        image.stride[1] = (width / 2) as c_int;
        image.stride[2] = (width / 2) as c_int;
        let flags = if force { VPX_EFLAG_FORCE_KF as _ } else { 0 };
        // SAFETY: an initialised encoder and an image whose planes outlive
        // the call (libvpx copies what it needs before returning).
        let status = unsafe {
            vpx_sys::vpx_codec_encode(
                self.context.ptr(),
                &image,
                self.frames as i64,
                1,
                flags,
                VPX_DL_REALTIME as c_ulong,
            )
        };
        self.context.check("encoding", status)?;
        self.frames += 1;
        let mut frame = EncodedFrame {
            data: Vec::new(),
            keyframe: false,
        };
        let mut iter: vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: an initialised encoder; the packet stays valid until
            // the next call on it, and we copy out of it before that.
            let packet = unsafe { vpx_sys::vpx_codec_get_cx_data(self.context.ptr(), &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: non-null and libvpx's; a frame packet's union member
            // is `frame`, whose buffer holds `sz` bytes.
            unsafe {
                if (*packet).kind != VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let coded = (*packet).data.frame;
                frame.data.extend_from_slice(std::slice::from_raw_parts(
                    coded.buf.cast::<u8>(),
                    coded.sz as usize,
                ));
                frame.keyframe |= coded.flags & VPX_FRAME_IS_KEY != 0;
            }
        }
        Ok(frame)
    }
}

/// A VP8 or VP9 decoder.
pub struct Decoder {
    context: Context,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("codec", &self.context.codec)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    pub fn new(codec: Vpx) -> Result<Self, VpxError> {
        let mut context = Context::zeroed(codec);
        let cfg = vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        // SAFETY: a zeroed context, a static interface, a valid config.
        let status = unsafe {
            vpx_sys::vpx_codec_dec_init_ver(
                context.ptr(),
                decoder_iface(codec),
                &cfg,
                0,
                VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        context.check("initialisation", status)?;
        Ok(Decoder { context })
    }

    /// Decodes one frame; the picture it shows, if any, is handed to
    /// `inspect` while it is still valid.
    pub fn decode_with<R>(
        &mut self,
        frame: &[u8],
        inspect: impl FnOnce(Luma<'_>) -> R,
    ) -> Result<Option<R>, VpxError> {
        let size = c_uint::try_from(frame.len()).map_err(|_| VpxError::Codec {
            codec: self.context.codec.name(),
            operation: "decoding",
            message: format!("a frame of {} bytes", frame.len()),
        })?;
        // SAFETY: an initialised decoder reading `size` bytes of `frame`.
        let status = unsafe {
            vpx_sys::vpx_codec_decode(self.context.ptr(), frame.as_ptr(), size, ptr::null_mut(), 0)
        };
        self.context.check("decoding", status)?;
        let mut iter: vpx_codec_iter_t = ptr::null();
        let mut shown: *mut vpx_image_t = ptr::null_mut();
        loop {
            // SAFETY: an initialised decoder; images stay valid until the
            // next decode call.
            let image = unsafe { vpx_sys::vpx_codec_get_frame(self.context.ptr(), &mut iter) };
            if image.is_null() {
                break;
            }
            shown = image;
        }
        if shown.is_null() {
            return Ok(None);
        }
        // SAFETY: a non-null image of libvpx's, valid until the next decode
        // (which needs `&mut self`, so not while `Luma` is borrowed); its
        // luma plane holds `stride * d_h` bytes.
        let luma = unsafe {
            let image = &*shown;
            let stride = usize::try_from(image.stride[0]).unwrap_or(0);
            let height = image.d_h as usize;
            Luma {
                width: image.d_w as usize,
                height,
                stride,
                plane: std::slice::from_raw_parts(image.planes[0], stride * height),
            }
        };
        Ok(Some(inspect(luma)))
    }
}
