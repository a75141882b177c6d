// The error of a Docker request cni-shim cannot translate: its message is the user's answer.
export class TranslationError extends Error {}
