//! Opening the Candle device that [`LlamaParams::device`](crate::LlamaParams::device) names.

use candle_core::Device;
use music_crs_core::ComputeDevice;

use crate::{Error, Result};

/// The Candle device of `device`: refused with the missing feature's name when this build
/// cannot drive it, and with Candle's reason when it cannot be opened.
pub(crate) fn open(device: ComputeDevice) -> Result<Device> {
    if let Some(feature) = device.missing_feature(cfg!(feature = "cuda"), cfg!(feature = "metal")) {
        return Err(Error::FeatureDisabled {
            feature,
            what: format!("device {device}"),
        });
    }
    open_built(device)
}

/// Opens a device this build can drive (Candle's own check comes after ours, so it only
/// fires when the feature is on and the hardware or driver is missing).
fn open_built(device: ComputeDevice) -> Result<Device> {
    let opened = match device {
        ComputeDevice::Cpu => return Ok(Device::Cpu),
        ComputeDevice::Cuda(ordinal) => Device::new_cuda(ordinal),
        ComputeDevice::Metal(ordinal) => Device::new_metal(ordinal),
    };
    opened.map_err(|e| Error::Device {
        device: device.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_always_opens() {
        assert!(open(ComputeDevice::Cpu).unwrap().is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_it() {
        let err = open(ComputeDevice::Cuda(0)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FeatureDisabled {
                    feature: "cuda",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "device cuda:0 needs the `cuda` feature of music-crs-generate"
        );
    }

    #[cfg(not(feature = "metal"))]
    #[test]
    fn metal_without_the_feature_names_it() {
        let err = open(ComputeDevice::Metal(1)).unwrap_err().to_string();
        assert_eq!(
            err,
            "device metal:1 needs the `metal` feature of music-crs-generate"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_device_that_cannot_be_opened_is_named_with_candle_s_reason() {
        // Past the feature check, Candle itself refuses (here: built without CUDA; on a GPU
        // build: no device of that number, no driver).
        let err = open_built(ComputeDevice::Cuda(3)).unwrap_err();
        assert!(matches!(err, Error::Device { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("cannot open device cuda:3: "),
            "{message}"
        );
        assert!(
            message.len() > "cannot open device cuda:3: ".len(),
            "{message}"
        );
    }
}
