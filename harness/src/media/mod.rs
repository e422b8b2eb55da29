//! Media the synthetic peers send: the stamped test pattern and the tone,
//! and the codecs that carry them.

pub mod codec;
pub(crate) mod data_message;
pub(crate) mod frame;
pub mod opus;
pub mod pattern;
pub mod sei;
pub mod shared;
pub mod stamp;
pub mod tone;
