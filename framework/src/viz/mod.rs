//! Figures for people: labelled image grids, matrix heatmaps with a colour bar, training curves and the KL per
//! latent unit, drawn with plotters into an RGB canvas and written as PNG. Text uses an embedded font, so figures
//! look the same on every machine.

pub mod canvas;
pub mod curve;
pub mod grid;
pub mod heatmap;
pub mod image;
pub mod text;
pub mod unit_kl;

pub use canvas::Canvas;
pub use curve::save_training_curves;
pub use grid::{GridRow, LabelledGrid};
pub use heatmap::{ColourScale, Heatmap, HeatmapPanel};
pub use image::Image;
pub use unit_kl::{save_unit_kl, LayerKl};
