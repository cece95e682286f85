/**
 * @perch/shared: the wire protocol and the small pieces every Perch program shares.
 * See shared/README.md for what each export is for.
 */
export * from './errors';
export * from './ids';
export * from './topics';
export * from './messages';
export * from './decode';
export * from './config';
export * from './logger';
export * from './clock';
export * from './messages/model-spec';
export * from './messages/sample-input';
