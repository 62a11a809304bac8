/** Errors of the deploy gate, with stable codes. */
import { CodedError } from '../tuf/core/signet-error.js';

export type GateErrorCode =
  | 'POLICY' // the policy file cannot be read or is invalid
  | 'BAD_REVIEW' // an AdmissionReview (or verify request) that cannot be read
  | 'BUDGET'; // the decision did not finish within its time budget

export class GateError extends CodedError<GateErrorCode> {
  override name = 'GateError';
}
