// Socket events of the calls domain; filled in by the calls work.
export const callsRequests = {};
export const callsNotices = {};
