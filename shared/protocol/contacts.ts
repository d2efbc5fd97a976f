import { z } from 'zod';
import { notice } from './define.js';
import { DisplayName, UserId } from './common.js';

export const contactsRequests = {};

export const contactsNotices = {
  'contact:joined': notice({
    payload: z.object({
      userId: UserId,
      displayName: DisplayName.nullable(),
      /** The client's own id for the address-book entry, when it gave one. */
      clientIds: z.array(z.string()),
    }),
    description: 'Someone in your address book just registered.',
  }),
};
