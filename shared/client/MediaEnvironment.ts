import { ClientError } from './ClientError.js';

/**
 * The WebRTC primitives the SDK needs. Browsers have them as globals; React
 * Native apps pass react-native-webrtc's (or call its `registerGlobals()`).
 */
export interface MediaEnvironment {
  RTCPeerConnection: typeof RTCPeerConnection;
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
  /** Builds a stream from tracks (remote audio/video for players). */
  createStream(tracks: MediaStreamTrack[]): MediaStream;
}

export function defaultMediaEnvironment(): MediaEnvironment | undefined {
  const g = globalThis as unknown as {
    RTCPeerConnection?: typeof RTCPeerConnection;
    MediaStream?: typeof MediaStream;
    navigator?: { mediaDevices?: { getUserMedia?: (c: MediaStreamConstraints) => Promise<MediaStream> } };
  };
  const Pc = g.RTCPeerConnection;
  const Stream = g.MediaStream;
  const devices = g.navigator?.mediaDevices;
  if (!Pc || !Stream || !devices?.getUserMedia) return undefined;
  return {
    RTCPeerConnection: Pc,
    getUserMedia: (c) => devices.getUserMedia!.call(devices, c),
    createStream: (tracks) => new Stream(tracks),
  };
}

export function requireMediaEnvironment(env: MediaEnvironment | undefined): MediaEnvironment {
  if (!env) throw new ClientError('MEDIA', 'WebRTC is not available here; pass options.media (e.g. react-native-webrtc)');
  return env;
}

/** Microphone (and camera) with the processing a call wants. */
export async function openLocalMedia(env: MediaEnvironment, video: boolean): Promise<MediaStream> {
  try {
    return await env.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: video ? { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } } : false,
    });
  } catch (err) {
    throw new ClientError('MEDIA', `Could not open the microphone${video ? ' or camera' : ''}: ${String(err)}`, { cause: err });
  }
}
