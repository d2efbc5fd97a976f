// Socket events of the media domain; filled in by the media work.
export const mediaRequests = {};
export const mediaNotices = {};
