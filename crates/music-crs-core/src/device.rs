//! Which device a Candle model runs on: the CPU (always), an NVIDIA GPU through CUDA or an
//! Apple GPU through Metal (each only in a build with that Cargo feature).
//!
//! This is plain data, shared by the crates that run models (`music-crs-generate`'s Llama,
//! `music-crs-retrieval`'s BERT), each of which opens it with its own Candle and its own
//! feature flags. Written `cpu`, `cuda`, `cuda:1`, `metal` (the number is the GPU's ordinal,
//! 0 when left out), in config files and on the command line alike.
//!
//! ```
//! use music_crs_core::ComputeDevice;
//!
//! let gpu: ComputeDevice = "cuda:1".parse()?;
//! assert_eq!(gpu, ComputeDevice::Cuda(1));
//! assert_eq!(gpu.to_string(), "cuda:1");
//! assert_eq!("cuda".parse::<ComputeDevice>()?, ComputeDevice::Cuda(0));
//! assert_eq!(gpu.feature(), Some("cuda"));
//! // A build without the `cuda` feature cannot drive it:
//! assert_eq!(gpu.missing_feature(false, false), Some("cuda"));
//! assert!("tpu".parse::<ComputeDevice>().is_err());
//! # Ok::<(), music_crs_core::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a model's tensors live and run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ComputeDevice {
    /// The CPU (the default; every build).
    #[default]
    Cpu,
    /// The NVIDIA GPU of this ordinal, through CUDA (Cargo feature `cuda`).
    Cuda(usize),
    /// The Apple GPU of this ordinal, through Metal (Cargo feature `metal`).
    Metal(usize),
}

impl ComputeDevice {
    /// True for the CPU.
    pub fn is_cpu(&self) -> bool {
        matches!(self, ComputeDevice::Cpu)
    }

    /// The Cargo feature a build needs to run models on this device (`None` for the CPU).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            ComputeDevice::Cpu => None,
            ComputeDevice::Cuda(_) => Some("cuda"),
            ComputeDevice::Metal(_) => Some("metal"),
        }
    }

    /// The feature this device needs that a build lacks, given which of the two GPU
    /// features it was built with; `None` when the build can drive it.
    pub fn missing_feature(self, cuda_built: bool, metal_built: bool) -> Option<&'static str> {
        match self {
            ComputeDevice::Cuda(_) if !cuda_built => self.feature(),
            ComputeDevice::Metal(_) if !metal_built => self.feature(),
            _ => None,
        }
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Cpu => f.write_str("cpu"),
            ComputeDevice::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
            ComputeDevice::Metal(ordinal) => write!(f, "metal:{ordinal}"),
        }
    }
}

impl FromStr for ComputeDevice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidValue {
            field: "device".into(),
            reason,
        };
        let (kind, ordinal) = match text.split_once(':') {
            Some((kind, ordinal)) => {
                let ordinal = ordinal.parse::<usize>().map_err(|_| {
                    invalid(format!(
                        "{text:?}: the GPU number after `:` must be a whole number"
                    ))
                })?;
                (kind, Some(ordinal))
            }
            None => (text, None),
        };
        match (kind.to_ascii_lowercase().as_str(), ordinal) {
            ("cpu", None) => Ok(ComputeDevice::Cpu),
            ("cuda", ordinal) => Ok(ComputeDevice::Cuda(ordinal.unwrap_or(0))),
            ("metal", ordinal) => Ok(ComputeDevice::Metal(ordinal.unwrap_or(0))),
            ("cpu", Some(_)) => Err(invalid(format!("{text:?}: the CPU takes no number"))),
            _ => Err(invalid(format!(
                "{text:?} is not a device: use cpu, cuda, cuda:N, metal or metal:N"
            ))),
        }
    }
}

impl TryFrom<String> for ComputeDevice {
    type Error = Error;

    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl From<ComputeDevice> for String {
    fn from(device: ComputeDevice) -> String {
        device.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        for (text, device) in [
            ("cpu", ComputeDevice::Cpu),
            ("CPU", ComputeDevice::Cpu),
            ("cuda", ComputeDevice::Cuda(0)),
            ("cuda:0", ComputeDevice::Cuda(0)),
            ("cuda:3", ComputeDevice::Cuda(3)),
            ("metal", ComputeDevice::Metal(0)),
            ("Metal:1", ComputeDevice::Metal(1)),
        ] {
            assert_eq!(text.parse::<ComputeDevice>().unwrap(), device, "{text}");
            assert_eq!(device.to_string().parse::<ComputeDevice>().unwrap(), device);
        }
        assert_eq!(ComputeDevice::default(), ComputeDevice::Cpu);
        assert_eq!(ComputeDevice::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn bad_devices_are_named() {
        for (text, needle) in [
            ("gpu", "\"gpu\" is not a device: use cpu, cuda"),
            ("", "\"\" is not a device"),
            ("cuda:x", "the GPU number after `:` must be a whole number"),
            ("cuda:-1", "whole number"),
            ("cpu:0", "the CPU takes no number"),
        ] {
            let err = text.parse::<ComputeDevice>().unwrap_err().to_string();
            assert!(err.starts_with("invalid device: "), "{err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn the_missing_feature_is_named() {
        assert_eq!(ComputeDevice::Cpu.missing_feature(false, false), None);
        assert_eq!(
            ComputeDevice::Cuda(0).missing_feature(false, true),
            Some("cuda")
        );
        assert_eq!(ComputeDevice::Cuda(1).missing_feature(true, false), None);
        assert_eq!(
            ComputeDevice::Metal(0).missing_feature(true, false),
            Some("metal")
        );
        assert_eq!(ComputeDevice::Metal(0).missing_feature(false, true), None);
    }

    #[test]
    fn devices_are_strings_in_configs() {
        let json = serde_json::to_string(&ComputeDevice::Cuda(1)).unwrap();
        assert_eq!(json, "\"cuda:1\"");
        assert_eq!(
            serde_json::from_str::<ComputeDevice>("\"metal\"").unwrap(),
            ComputeDevice::Metal(0)
        );
        let err = serde_json::from_str::<ComputeDevice>("\"tpu\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"tpu\" is not a device"), "{err}");
    }
}
