// The APIRecorder library: request identity, recordings and their store.
//
// Layout: Identity/ (what makes two requests the same), Recording/ (the file model and how
// recordings are built and read back), Store/ (where files live and how they are written),
// Maintenance/ (verification and repair of recording trees). The JSON layer is PythonJSON,
// re-exported here so users import one module.
@_exported public import PythonJSON
