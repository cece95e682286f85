import { defineErrors } from '../define';

/** Codes raised by pipeline sources (camera, still images, audio, sensors). */
export const sourcesErrors = defineErrors({
  E_SOURCE_SPAWN: {
    meaning:
      'A source could not start its child process (ffmpeg or a sensor command), e.g. it is not installed.',
    action:
      'Install ffmpeg (or the sensor command) on the device and check that the service user can run it.',
  },
  E_SOURCE_EXITED: {
    meaning:
      'The process behind a live source (ffmpeg or a sensor command) exited; it is restarted with backoff.',
    action: "Read the stderr tail in the source's health: a wrong URL, device path, credentials or codec.",
  },
  E_SOURCE_STALLED: {
    meaning: 'A live source produced no data for longer than its stall timeout and was restarted.',
    action: 'Check the camera or stream; a network camera may be overloaded or unreachable.',
  },
  E_SOURCE_FRAME_TOO_LARGE: {
    meaning: 'A frame or image was larger than the configured size limit and was skipped.',
    action: 'Lower the camera resolution or raise the limit in the source configuration.',
  },
  E_SOURCE_FRAME_CORRUPT: {
    meaning: 'A frame in a camera stream did not have a valid JPEG structure and was skipped.',
    action: 'Usually transient (a damaged packet); if it persists, check the stream and its encoder.',
  },
  E_SOURCE_IMAGE_CORRUPT: {
    meaning:
      'A still image (folder or snapshot URL) could not be decoded; it was skipped and the source goes on.',
    action: 'Check the program that writes the images; the file name is in the error details.',
  },
  E_SOURCE_IMAGE_FORMAT: {
    meaning: 'A still image is not in a supported format (JPEG, PNG, WebP, GIF, TIFF, AVIF).',
    action: 'Write images in a supported format, or narrow the folder source to the right file extensions.',
  },
  E_SOURCE_FOLDER: {
    meaning: 'The watched folder of a folder source is missing or cannot be read; the source keeps retrying.',
    action: 'Create the folder, or give the service user permission to read it.',
  },
  E_SOURCE_HTTP_STATUS: {
    meaning: 'A snapshot URL answered with an HTTP status other than 2xx.',
    action: 'Check the URL and the credentials for the camera.',
  },
  E_SOURCE_HTTP_TIMEOUT: {
    meaning: 'A snapshot URL did not answer in full within the configured timeout.',
    action: 'Check that the camera is reachable, or raise the timeout.',
  },
  E_SOURCE_HTTP_TOO_LARGE: {
    meaning: 'A snapshot URL sent a body larger than the configured size limit; it was cut off and skipped.',
    action: 'Lower the snapshot resolution on the camera or raise maxBytes.',
  },
  E_SOURCE_HTTP_CONTENT_TYPE: {
    meaning: 'A snapshot URL answered with a content type that is not an image.',
    action: "Point the source at the camera's still-image URL, not a web page or a stream.",
  },
  E_SOURCE_HTTP_FETCH: {
    meaning: 'A snapshot URL could not be fetched (connection refused, DNS failure, TLS error).',
    action: 'Check the host name, port and network path to the camera.',
  },
  E_SOURCE_SENSOR_PARSE: {
    meaning:
      'A sensor line was neither a number nor JSON with the configured numeric fields; it was skipped.',
    action:
      'Make the sensor print one number, a JSON array of numbers or a JSON object with the fields per line.',
  },
  E_SOURCE_SENSOR_LINE_TOO_LONG: {
    meaning: 'A sensor line was longer than the line limit; it was skipped.',
    action: 'Make the sensor end each reading with a newline.',
  },
  E_SOURCE_SENSOR_FILE: {
    meaning: 'A sensor file cannot be read; the source keeps retrying.',
    action: 'Check the path and the permissions of the sensor file.',
  },
  E_SOURCE_MQTT: {
    meaning: 'A sensor MQTT source could not connect to its broker or subscribe to its topic.',
    action:
      "Check the source's url, username and password, and that the broker ACL lets that login read the topic.",
  },
});
