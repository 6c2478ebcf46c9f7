//! A component's manifest — its top-level imports and exports — read from its bytes, so the
//! grant check runs before Cranelift spends seconds (tens for Python or JavaScript) compiling
//! a plugin that would be refused anyway.

use wasmparser::{Encoding, KnownCustom, Parser, Payload};

/// What a component imports and exports, by full name (`powernode:step/log@0.1.3`), and the
/// linear memory its core modules define at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Its top-level imports: what it asks the host for.
    pub imports: Vec<String>,
    /// Its top-level exports.
    pub exports: Vec<String>,
    /// Bytes of the minimum sizes of the memories its modules define (imported ones are
    /// someone else's): below this memory cap it cannot even be instantiated.
    pub initial_memory: u64,
    /// The tools its producers section says made it (`processed-by`), e.g. `ComponentizeJS`.
    pub processed_by: Vec<String>,
}

/// Reads the manifest of the component `wasm`; `Err` says why it is not one.
pub fn read(wasm: &[u8]) -> Result<Manifest, String> {
    let mut manifest = Manifest::default();
    // Nested modules and components have imports of their own, satisfied inside the
    // component: only depth 0 is what the host must provide.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err("it is a core WebAssembly module, not a component; build it for \
                            `wasm32-wasip2` (or with a component toolchain such as componentize-py or jco)"
                    .into());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    manifest
                        .imports
                        .push(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(|e| e.to_string())?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    manifest.initial_memory = manifest
                        .initial_memory
                        .saturating_add(memory.initial.saturating_mul(page));
                }
            }
            Payload::CustomSection(section) if depth == 0 => {
                // Only a hint for messages: a producers section that does not parse is ignored.
                if let KnownCustom::Producers(fields) = section.as_known() {
                    for field in fields.into_iter().flatten().filter(|f| f.name == "processed-by") {
                        manifest
                            .processed_by
                            .extend(field.values.into_iter().flatten().map(|v| v.name.to_string()));
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    manifest
                        .exports
                        .push(export.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn a_core_module_is_told_to_be_built_as_a_component() {
        let err = read(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.contains("core WebAssembly module, not a component"), "{err}");
    }

    #[test]
    fn garbage_is_not_read() {
        assert!(read(b"\0asm not really").is_err());
        assert!(read(b"").is_err());
    }
}
