//! music-crs
