/** Plot builders: each returns a plotly figure object carrying its provenance. */
export * from './breakdown';
export * from './ckks';
export * from './dp';
export * from './lm-head';
export * from './optimisation';
export * from './sota';
export * from './stages';
export * from './sweep';
export * from './profile';
export * from './private';
