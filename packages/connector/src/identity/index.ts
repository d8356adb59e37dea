export { createCsr, generateIdentity, type Identity } from './csr.ts';
export { IdentityErrorCode } from './errors.ts';
export { parsePin, pinMatches, pinOf } from './pin.ts';
export { certificateAge, DEFAULT_ROTATION_AGE_MS, needsRotation } from './rotation.ts';
export { readState, STATE_FILES, writeStateFiles, type StateFiles, type StateMeta } from './state.ts';
