//! Pinning images at create/update: each pipeline's `transform.image` resolved by its
//! executor to a content digest ([`PinnedImage`]), recorded with the pipeline version and run
//! by its workers (see [`super::pool_spec`]).

use std::collections::BTreeMap;

use crate::executor::{ExecutorError, PinnedImage};
use crate::spec::{EffectiveSpec, ParsedSpec};

use super::Engine;
use super::error::{PpsError, Result};
use super::records::PipelineInfo;
use super::registry::CreateOptions;

/// Pinned images by pipeline name: what [`Engine::pin_images`] returns and
/// [`CreateOptions::images`] carries into registration.
pub type ImagePins = BTreeMap<String, PinnedImage>;

impl Engine {
    /// Resolves the image of every pipeline in `specs` with the executor it will run on
    /// (`opts.executor`, else the existing pipeline's, else the engine's default), so that
    /// [`Engine::create_pipelines`] with the result in [`CreateOptions::images`] records the
    /// digests and refuses nothing later. A missing image, or one the executor's workers
    /// cannot run, is [`PpsError::Image`] naming the pipeline and the image; nothing is
    /// created. Executors without images contribute nothing.
    ///
    /// Reads one pipeline record per spec from the store (point reads) and waits for the
    /// executor (which may pull the image within its pull timeout).
    pub async fn pin_images(
        &self,
        specs: &[ParsedSpec],
        opts: &CreateOptions,
    ) -> Result<ImagePins> {
        let mut pins = ImagePins::new();
        for parsed in specs {
            // The image may come from the cluster or project defaults.
            let effective = self.apply_defaults(parsed)?.spec.effective();
            if parsed.spec.pipeline.is_none() || effective.name.is_empty() {
                continue;
            }
            let name = super::pipeline_id(&effective.project, &effective.name);
            let executor = match &opts.executor {
                Some(e) => e.clone(),
                None => match self.inspect_pipeline(&name) {
                    Ok(p) => p.executor,
                    Err(PpsError::PipelineNotFound(_)) => self.inner.default_executor.clone(),
                    Err(e) => return Err(e),
                },
            };
            // An unknown executor is refused by registration, with the names it knows.
            let Some(executor) = self.inner.executors.get(&executor).cloned() else {
                continue;
            };
            match executor.pin_image(&effective).await {
                Ok(Some(pinned)) => {
                    pins.insert(name, pinned);
                }
                Ok(None) => {}
                Err(source) => return Err(image_error(&name, effective.image(), source)),
            }
        }
        Ok(pins)
    }
}

/// The error of a pipeline whose image cannot be used.
fn image_error(pipeline: &str, image: &str, source: ExecutorError) -> PpsError {
    PpsError::Image {
        pipeline: pipeline.to_string(),
        image: image.to_string(),
        source: Box::new(source),
    }
}

/// The pin a new version of pipeline `name` records: the one just resolved, else the current
/// version's when it names the same image on the same executor (a rerun, or an update that
/// left the image alone while nothing was resolved), else none.
pub(super) fn pinned_image(
    opts: &CreateOptions,
    name: &str,
    existing: Option<&PipelineInfo>,
    effective: &EffectiveSpec,
    executor: &str,
) -> Option<PinnedImage> {
    if let Some(p) = opts.images.get(name) {
        return Some(p.clone());
    }
    existing
        .filter(|old| old.executor == executor)
        .and_then(|old| old.image.clone())
        .filter(|pin| pin.image == effective.image())
}
