import { defineErrors } from '../define';

/** Codes raised by perchctl, the operator's command line. */
export const cliErrors = defineErrors({
  E_CLI_USAGE: {
    meaning: 'The command line is incomplete or an argument is malformed.',
    action: 'Run the command with --help to see its arguments and options.',
  },
  E_CLI_NOT_LOGGED_IN: {
    meaning: 'perchctl does not know which controller to talk to, or with which token.',
    action: 'Run `perchctl login --url <controller URL> --token <token>`, or set PERCH_URL and PERCH_TOKEN.',
  },
  E_CLI_UNREACHABLE: {
    meaning: 'The controller did not answer: connection refused, unknown host, or timed out.',
    action:
      'Check the URL (perchctl login), that perch-controller is running and that the network allows it.',
  },
  E_CLI_RESPONSE: {
    meaning: 'The controller answered with something perchctl does not understand.',
    action: 'Check that perchctl and perch-controller are the same version.',
  },
  E_CLI_BUNDLE: {
    meaning: 'The model bundle folder is missing model.onnx, spec.json or labels.txt, or one is unreadable.',
    action:
      'Put model.onnx, spec.json and labels.txt (and optionally sample.bin, the raw input tensor) in one folder and push that folder.',
  },
  E_PORT_IN_USE: {
    meaning: 'A port Perch was told to listen on (PERCH_HTTP_PORT, PERCH_MQTT_PORT) is already taken.',
    action:
      'Stop the program that holds the port, or choose another port with the variable named in the message.',
  },
  E_DEMO_SOURCE: {
    meaning:
      'PERCH_DEMO_SOURCE names nothing usable: no such folder, file, URL or /dev/videoN, or a folder without images.',
    action:
      'Point PERCH_DEMO_SOURCE at a folder of .jpg/.png photos, a video file, an rtsp:// or http:// URL, or /dev/videoN.',
  },
  E_CLI_CONFIG: {
    meaning: 'The perchctl login file is unreadable or malformed.',
    action: 'Run `perchctl login` again; it rewrites the file.',
  },
});
