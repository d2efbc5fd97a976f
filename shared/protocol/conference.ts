// Socket events of the conference domain; filled in by the conference work.
export const conferenceRequests = {};
export const conferenceNotices = {};
