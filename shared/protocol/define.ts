import type { z } from 'zod';
import type { ErrorBody } from './errors.js';

/**
 * A client-to-server event: the payload the client sends and what the
 * acknowledgement carries on success. Every such event is acknowledged with
 * `{ ok: true, ...response }` or `{ ok: false, error }`.
 */
export interface RequestSpec<Req extends z.ZodTypeAny = z.ZodTypeAny, Res extends z.ZodTypeAny = z.ZodTypeAny> {
  request: Req;
  response: Res;
  description: string;
}

/** A server-to-client event: a payload, no acknowledgement. */
export interface NoticeSpec<P extends z.ZodTypeAny = z.ZodTypeAny> {
  payload: P;
  description: string;
}

export const request = <Req extends z.ZodTypeAny, Res extends z.ZodTypeAny>(
  spec: RequestSpec<Req, Res>,
): RequestSpec<Req, Res> => spec;

export const notice = <P extends z.ZodTypeAny>(spec: NoticeSpec<P>): NoticeSpec<P> => spec;

export type AckOk<T> = { ok: true } & T;
export interface AckErr { ok: false; error: ErrorBody }
export type AckResponse<T> = AckOk<T> | AckErr;

export type RequestMap = Record<string, RequestSpec>;
export type NoticeMap = Record<string, NoticeSpec>;

export type ClientEventsOf<M extends RequestMap> = {
  [K in keyof M]: (
    payload: z.input<M[K]['request']>,
    ack: (res: AckResponse<z.output<M[K]['response']>>) => void,
  ) => void;
};

export type ServerEventsOf<M extends NoticeMap> = {
  [K in keyof M]: (payload: z.output<M[K]['payload']>) => void;
};
