/** Sent as the app version when the app does not give its own. */
export const SDK_VERSION = '0.1.0';
