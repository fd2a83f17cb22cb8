package azureblob

// ProbeCORS exposes the CORS probe, which Diagnose uses only when the
// account's properties cannot be read, to the Azurite tests.
var ProbeCORS = (*Backend).probeCORS
