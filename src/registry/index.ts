/** The registry client's public surface. */
export { pullImage, fetchManifest, resolveRemote, selectPlatform, MAX_MANIFEST_SIZE, ManifestTooLargeError, type PullOptions, type RemoteOptions } from './pull.js';
export { pushImage, type PushOptions } from './push.js';
export { Keychain, StaticAuthenticator, anonymous, dockerConfigPath, configKey, type Authenticator, type Credential } from './auth.js';
export { RegistrySession, RegistryClient, parseChallenges, repositoryScope, type SessionOptions } from './transport.js';
export { RegistryError, AuthError, ProtocolError, TransportError, CredentialHelperError, OCI_ERROR_CODES, type OciErrorCode } from './errors.js';
export type { TransferEvent, PullEvent, PushEvent } from './progress.js';
export { sourcesOf, recordSources } from './sources.js';
